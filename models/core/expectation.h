// The driver's intent for one request, and the check of a translation against it.
#pragma once
#include <string>

#include "translation.h"

namespace iommusim {

struct Expectation {
    constexpr Expectation() = default;
    constexpr Expectation(bool mapped, Addr pa, Perm perm) : pa(pa), mapped(mapped), perm(perm) {}

    // The address first: 16 bytes, so that an oracle returns it in two registers (checking
    // mode asks one per translation).
    Addr pa = 0;          // where it should land (offset included)
    bool mapped = false;  // the software made this address translatable for this requester
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
