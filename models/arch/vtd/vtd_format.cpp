#include "vtd_format.h"

namespace iommusim::vtd {

namespace {
// Output-address bits of a leaf or table pointer at `level`, large pages aligned down.
Addr addr_field(uint64_t e, unsigned level, bool large) {
    unsigned lo = large ? 12 + 9 * (level - 1) : 12;
    return e & bit_mask(51, lo);
}
}  // namespace

uint64_t SecondLevelFormat::make_table(Addr pa, unsigned) const {
    return (pa & bit_mask(51, 12)) | (1ULL << sl::R) | (1ULL << sl::W);
}

uint64_t SecondLevelFormat::make_leaf(Addr pa, Perm perm, unsigned level) const {
    uint64_t e = pa & bit_mask(51, 12);
    if (perm & kPermR) e |= 1ULL << sl::R;
    if (perm & kPermW) e |= 1ULL << sl::W;
    if (perm & kPermX) e |= 1ULL << sl::X;
    if (level > 1) e |= 1ULL << sl::PS;
    if (snp_) e |= 1ULL << sl::SNP;
    return e;
}

Addr SecondLevelFormat::address(uint64_t e, unsigned level) const {
    return addr_field(e, level, level > 1 && bit(e, sl::PS));
}

Perm SecondLevelFormat::leaf_perm(uint64_t e, unsigned) const {
    return Perm((bit(e, sl::R) ? kPermR : 0) | (bit(e, sl::W) ? kPermW : 0) |
                (bit(e, sl::X) ? kPermX : 0));
}

uint64_t FirstLevelFormat::make_table(Addr pa, unsigned) const {
    uint64_t e = (pa & bit_mask(51, 12)) | (1ULL << fl::P) | (1ULL << fl::RW) | (1ULL << fl::US);
    if (ad_) e |= 1ULL << fl::A;
    return e;
}

uint64_t FirstLevelFormat::make_leaf(Addr pa, Perm perm, unsigned level) const {
    uint64_t e = (pa & bit_mask(51, 12)) | (1ULL << fl::P) | (1ULL << fl::US);
    if (perm & kPermW) e |= 1ULL << fl::RW;
    if (!(perm & kPermX)) e |= 1ULL << fl::XD;
    if (level > 1) e |= 1ULL << fl::PS;
    if (ad_) e |= (1ULL << fl::A) | (1ULL << fl::D);
    return e;
}

Addr FirstLevelFormat::address(uint64_t e, unsigned level) const {
    return addr_field(e, level, level > 1 && bit(e, fl::PS)) & ~(1ULL << 63);
}

Perm FirstLevelFormat::leaf_perm(uint64_t e, unsigned) const {
    return Perm(kPermR | (bit(e, fl::RW) ? kPermW : 0) | (bit(e, fl::XD) ? 0 : kPermX));
}

RootEntry make_root_entry(Addr ctp) {
    return {(ctp & bit_mask(63, 12)) | 1, 0};
}

ContextEntry make_context_entry(Addr slptptr, unsigned aw, uint16_t did, TranslationType tt,
                                bool fpd) {
    ContextEntry c;
    c.lo = (slptptr & bit_mask(63, 12)) | (uint64_t(tt) << 2) | (fpd ? 2 : 0) | 1;
    c.hi = (uint64_t(did) << 8) | (aw & 7);
    return c;
}

ScalableRootEntry make_sm_root_entry(Addr lctp, Addr uctp) {
    ScalableRootEntry r;
    if (lctp) r.lo = (lctp & bit_mask(63, 12)) | 1;
    if (uctp) r.hi = (uctp & bit_mask(63, 12)) | 1;
    return r;
}

ScalableContextEntry make_sm_context_entry(const ScalableContextFields& f) {
    ScalableContextEntry c;
    c.qw[0] = (f.pasid_dir & bit_mask(63, 12)) | (uint64_t(f.pdts & 7) << 9) |
              (uint64_t(f.pre) << 4) | (uint64_t(f.paside) << 3) | (uint64_t(f.dte) << 2) |
              (uint64_t(f.fpd) << 1) | 1;
    c.qw[1] = (f.rid_pasid & 0xFFFFF) | (uint64_t(f.rid_priv) << 20);
    return c;
}

PasidDirEntry make_pasid_dir_entry(Addr pasid_table, bool fpd) {
    return {(pasid_table & bit_mask(63, 12)) | (fpd ? 2 : 0) | 1};
}

PasidEntry make_pasid_entry(const PasidEntryFields& f) {
    PasidEntry p;
    p.qw[0] = (f.slptptr & bit_mask(63, 12)) | (uint64_t(f.slade) << 9) | (uint64_t(f.pgtt) << 6) |
              (uint64_t(f.slee) << 5) | (uint64_t(f.aw & 7) << 2) | (uint64_t(f.fpd) << 1) | 1;
    p.qw[1] = f.did;
    p.qw[2] = (f.flptr & bit_mask(63, 12)) | (uint64_t(f.wpe) << 4) |
              (uint64_t(f.fl5 ? 1 : 0) << 2) | uint64_t(f.sre);
    return p;
}

}  // namespace iommusim::vtd
