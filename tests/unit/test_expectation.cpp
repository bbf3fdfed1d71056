// translation_matches (checking mode's per-translation verdict) agrees with
// check_translation (which also words the mismatch) on random results and intents.
#include <catch2/catch.hpp>

#include "core/expectation.h"
#include "support/property.h"

using namespace iommusim;

TEST_CASE("translation_matches is check_translation's verdict", "[expectation][property]") {
    const uint64_t n = test::scaled(20000);
    test::Rng rng(20261206);
    // Few distinct addresses and permissions, so that matches and each mismatch occur.
    uint64_t matched = 0, mismatched = 0;
    for (uint64_t i = 0; i < n; ++i) {
        WalkResult r;
        if (rng.chance(30)) r.fault.kind = FaultKind::NotPresent;
        r.tr.out = 0x1000 * rng.below(3) + 0x40;
        r.tr.perm = Perm(rng.below(8));
        Expectation e;
        e.mapped = rng.chance(75);
        e.pa = 0x1000 * rng.below(3) + 0x40;
        e.perm = Perm(rng.below(8));
        const Access acc = Access(rng.below(3));
        const bool exec = rng.chance(25);
        const bool m = translation_matches(r, e, acc, exec);
        CHECK(m == check_translation(r, e, acc, exec).empty());
        ++(m ? matched : mismatched);
    }
    CHECK(matched > n / 20);
    CHECK(mismatched > n / 20);
}
