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

// Whether `r` is what the intent says (check_translation's verdict without its sentence:
// checking mode asks this for every translation).
inline bool translation_matches(const WalkResult& r, const Expectation& e, Access access,
                                bool exec) {
    const bool allowed = e.mapped && permits(e.perm, perm_needed(access, exec));
    return allowed == r.ok() && (!allowed || r.tr.out == e.pa);
}

// Empty when `r` is what the intent says: a translation to exactly `e.pa` for a permitted
// access, and a fault otherwise. Otherwise a sentence describing the mismatch.
std::string check_translation(const WalkResult& r, const Expectation& e, Access access, bool exec);

}  // namespace iommusim
