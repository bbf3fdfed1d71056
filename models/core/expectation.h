// The driver's intent for one request, and the check of a translation against it.
#pragma once
#include <string>

#include "translation.h"

namespace iommusim {

struct Expectation {
    bool mapped = false;  // the software made this address translatable for this requester
    Addr pa = 0;          // where it should land (offset included)
    Perm perm = kPermNone;
};

// Empty when `r` is what the intent says: a translation to exactly `e.pa` for a permitted
// access, and a fault otherwise. Otherwise a sentence describing the mismatch.
std::string check_translation(const WalkResult& r, const Expectation& e, Access access, bool exec);

}  // namespace iommusim
