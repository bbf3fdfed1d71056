// Failure reasons for bad input: functions that can refuse take an optional `std::string* why`
// and fill it with a sentence saying what was wrong.
#pragma once
#include <string>
#include <utility>

namespace iommusim {

// Store `text` in `*why` (if asked for) and return false, for `return fail(why, ...)`.
inline bool fail(std::string* why, std::string text) {
    if (why) *why = std::move(text);
    return false;
}

}  // namespace iommusim
