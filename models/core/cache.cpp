#include "cache.h"

#include <fmt/format.h>

namespace iommusim {

std::optional<Replacement> parse_replacement(std::string_view n) {
    if (n == "lru") return Replacement::LRU;
    if (n == "plru" || n == "tree-plru") return Replacement::TreePLRU;
    if (n == "fifo") return Replacement::FIFO;
    if (n == "random") return Replacement::Random;
    return std::nullopt;
}

const char* to_string(Replacement r) {
    switch (r) {
        case Replacement::LRU: return "lru";
        case Replacement::TreePLRU: return "plru";
        case Replacement::FIFO: return "fifo";
        case Replacement::Random: return "random";
    }
    return "?";
}

std::string check(const CacheGeometry& g) {
    if (g.sets == 0 || g.ways == 0) return "sets and ways must be at least 1";
    if (g.policy == Replacement::TreePLRU && ((g.ways & (g.ways - 1)) || g.ways > 64))
        return fmt::format("tree-PLRU needs a power-of-two number of ways up to 64, not {}",
                           g.ways);
    return {};
}

}  // namespace iommusim
