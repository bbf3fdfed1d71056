// VT-d encoders used by the driver model: the second- and first-level paging formats as
// PteFormats, and constructors for root, context, PASID-directory and PASID-table entries.
#pragma once
#include <cstdint>

#include "core/pte_format.h"
#include "core/sparse_memory.h"
#include "vtd_tables.h"

namespace iommusim::vtd {

// Second-level paging (9.8): R/W/X, PS for 2 MiB / 1 GiB leaves, SNP optional.
class SecondLevelFormat final : public PteFormat {
public:
    SecondLevelFormat(unsigned levels, bool large_2m, bool large_1g, bool snoop = false)
        : levels_(levels), l2_(large_2m), l3_(large_1g), snp_(snoop) {}
    const char* name() const override { return "vtd-second-level"; }
    unsigned levels() const override { return levels_; }
    unsigned index_bits(unsigned) const override { return 9; }
    unsigned level_shift(unsigned level) const override { return 12 + 9 * (level - 1); }
    bool leaf_allowed(unsigned level) const override {
        return level == 1 || (level == 2 && l2_) || (level == 3 && l3_);
    }
    uint64_t make_table(Addr pa, unsigned level) const override;
    uint64_t make_leaf(Addr pa, Perm perm, unsigned level) const override;
    bool is_present(uint64_t e, unsigned) const override { return (e & 3) != 0; }
    bool is_leaf(uint64_t e, unsigned level) const override { return level == 1 || bit(e, sl::PS); }
    Addr address(uint64_t e, unsigned level) const override;
    Perm leaf_perm(uint64_t e, unsigned level) const override;

private:
    unsigned levels_;
    bool l2_, l3_, snp_;
};

// First-level paging (9.7), x86-64 4- or 5-level format. Leaves are user-accessible (U/S=1)
// so requests without supervisor privilege succeed; `preset_ad` sets A and D up front as
// Linux does, sparing the hardware its A/D write-backs.
class FirstLevelFormat final : public PteFormat {
public:
    FirstLevelFormat(unsigned levels, bool large_1g, bool preset_ad = true)
        : levels_(levels), l3_(large_1g), ad_(preset_ad) {}
    const char* name() const override { return "vtd-first-level"; }
    unsigned levels() const override { return levels_; }
    unsigned index_bits(unsigned) const override { return 9; }
    unsigned level_shift(unsigned level) const override { return 12 + 9 * (level - 1); }
    bool leaf_allowed(unsigned level) const override {
        return level == 1 || level == 2 || (level == 3 && l3_);
    }
    uint64_t make_table(Addr pa, unsigned level) const override;
    uint64_t make_leaf(Addr pa, Perm perm, unsigned level) const override;
    bool is_present(uint64_t e, unsigned) const override { return bit(e, fl::P); }
    bool is_leaf(uint64_t e, unsigned level) const override { return level == 1 || bit(e, fl::PS); }
    Addr address(uint64_t e, unsigned level) const override;
    Perm leaf_perm(uint64_t e, unsigned level) const override;

private:
    unsigned levels_;
    bool l3_, ad_;
};

// ---- Entry constructors ----
RootEntry make_root_entry(Addr ctp);
ContextEntry make_context_entry(Addr slptptr, unsigned aw, uint16_t did, TranslationType tt,
                                bool fpd = false);
ScalableRootEntry make_sm_root_entry(Addr lctp, Addr uctp);  // 0 = half not present

struct ScalableContextFields {
    Addr pasid_dir = 0;
    unsigned pdts = 0;  // directory holds 2^(pdts+7) entries
    uint32_t rid_pasid = 0;
    bool rid_priv = false;
    bool paside = true;
    bool dte = false;
    bool pre = false;
    bool fpd = false;
};
ScalableContextEntry make_sm_context_entry(const ScalableContextFields& f);
PasidDirEntry make_pasid_dir_entry(Addr pasid_table, bool fpd = false);

struct PasidEntryFields {
    Pgtt pgtt = Pgtt::SecondLevel;
    uint16_t did = 0;
    unsigned aw = kAw48;  // second-level width
    Addr slptptr = 0;
    Addr flptr = 0;
    bool fl5 = false;  // FLPM: 5-level first-level tables
    bool sre = false;  // supervisor requests enabled
    bool wpe = false;  // write protect enable for supervisor requests
    bool slade = false;
    bool slee = false;
    bool fpd = false;
};
PasidEntry make_pasid_entry(const PasidEntryFields& f);

// Store / load an entry of N quadwords in simulated memory (little-endian).
template <typename Entry>
void store_entry(SparseMemory& mem, Addr addr, const Entry& e) {
    static_assert(sizeof(Entry) % 8 == 0);
    mem.write(addr, &e, sizeof(Entry));  // entries are arrays of uint64_t; host is little-endian
}
template <typename Entry>
Entry load_entry(const SparseMemory& mem, Addr addr) {
    Entry e;
    mem.read(addr, &e, sizeof(Entry));
    return e;
}
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "entry images assume a little-endian host");

}  // namespace iommusim::vtd
