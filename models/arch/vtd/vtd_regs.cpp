#include "vtd_regs.h"

#include <algorithm>
#include <iterator>

namespace iommusim::vtd {

namespace {

// Sorted by offset for the binary search in find_reg.
constexpr RegInfo kRegs[] = {
    {reg::VER, 4, "VER_REG"},
    {reg::CAP, 8, "CAP_REG"},
    {reg::ECAP, 8, "ECAP_REG"},
    {reg::GCMD, 4, "GCMD_REG"},
    {reg::GSTS, 4, "GSTS_REG"},
    {reg::RTADDR, 8, "RTADDR_REG"},
    {reg::CCMD, 8, "CCMD_REG"},
    {reg::FSTS, 4, "FSTS_REG"},
    {reg::FECTL, 4, "FECTL_REG"},
    {reg::FEDATA, 4, "FEDATA_REG"},
    {reg::FEADDR, 4, "FEADDR_REG"},
    {reg::FEUADDR, 4, "FEUADDR_REG"},
    {reg::AFLOG, 8, "AFLOG_REG"},
    {reg::PMEN, 4, "PMEN_REG"},
    {reg::PLMBASE, 4, "PLMBASE_REG"},
    {reg::PLMLIMIT, 4, "PLMLIMIT_REG"},
    {reg::PHMBASE, 8, "PHMBASE_REG"},
    {reg::PHMLIMIT, 8, "PHMLIMIT_REG"},
    {reg::IQH, 8, "IQH_REG"},
    {reg::IQT, 8, "IQT_REG"},
    {reg::IQA, 8, "IQA_REG"},
    {reg::ICS, 4, "ICS_REG"},
    {reg::IECTL, 4, "IECTL_REG"},
    {reg::IEDATA, 4, "IEDATA_REG"},
    {reg::IEADDR, 4, "IEADDR_REG"},
    {reg::IEUADDR, 4, "IEUADDR_REG"},
    {reg::IQERCD, 8, "IQERCD_REG"},
    {reg::IRTA, 8, "IRTA_REG"},
    {reg::PQH, 8, "PQH_REG"},
    {reg::PQT, 8, "PQT_REG"},
    {reg::PQA, 8, "PQA_REG"},
    {reg::PRS, 4, "PRS_REG"},
    {reg::PECTL, 4, "PECTL_REG"},
    {reg::PEDATA, 4, "PEDATA_REG"},
    {reg::PEADDR, 4, "PEADDR_REG"},
    {reg::PEUADDR, 4, "PEUADDR_REG"},
    {reg::MTRRCAP, 8, "MTRRCAP_REG"},
    {reg::MTRRDEF, 8, "MTRRDEF_REG"},
    {reg::MTRR_FIX64K_00000, 8, "MTRR_FIX64K_00000_REG"},
    {reg::MTRR_FIX16K_80000, 8, "MTRR_FIX16K_80000_REG"},
    {reg::MTRR_FIX16K_A0000, 8, "MTRR_FIX16K_A0000_REG"},
    {reg::MTRR_FIX4K_C0000, 8, "MTRR_FIX4K_C0000_REG"},
    {reg::MTRR_FIX4K_C8000, 8, "MTRR_FIX4K_C8000_REG"},
    {reg::MTRR_FIX4K_D0000, 8, "MTRR_FIX4K_D0000_REG"},
    {reg::MTRR_FIX4K_D8000, 8, "MTRR_FIX4K_D8000_REG"},
    {reg::MTRR_FIX4K_E0000, 8, "MTRR_FIX4K_E0000_REG"},
    {reg::MTRR_FIX4K_E8000, 8, "MTRR_FIX4K_E8000_REG"},
    {reg::MTRR_FIX4K_F0000, 8, "MTRR_FIX4K_F0000_REG"},
    {reg::MTRR_FIX4K_F8000, 8, "MTRR_FIX4K_F8000_REG"},
    {reg::mtrr_physbase(0), 8, "MTRR_PHYSBASE0_REG"},
    {reg::mtrr_physmask(0), 8, "MTRR_PHYSMASK0_REG"},
    {reg::mtrr_physbase(1), 8, "MTRR_PHYSBASE1_REG"},
    {reg::mtrr_physmask(1), 8, "MTRR_PHYSMASK1_REG"},
    {reg::mtrr_physbase(2), 8, "MTRR_PHYSBASE2_REG"},
    {reg::mtrr_physmask(2), 8, "MTRR_PHYSMASK2_REG"},
    {reg::mtrr_physbase(3), 8, "MTRR_PHYSBASE3_REG"},
    {reg::mtrr_physmask(3), 8, "MTRR_PHYSMASK3_REG"},
    {reg::mtrr_physbase(4), 8, "MTRR_PHYSBASE4_REG"},
    {reg::mtrr_physmask(4), 8, "MTRR_PHYSMASK4_REG"},
    {reg::mtrr_physbase(5), 8, "MTRR_PHYSBASE5_REG"},
    {reg::mtrr_physmask(5), 8, "MTRR_PHYSMASK5_REG"},
    {reg::mtrr_physbase(6), 8, "MTRR_PHYSBASE6_REG"},
    {reg::mtrr_physmask(6), 8, "MTRR_PHYSMASK6_REG"},
    {reg::mtrr_physbase(7), 8, "MTRR_PHYSBASE7_REG"},
    {reg::mtrr_physmask(7), 8, "MTRR_PHYSMASK7_REG"},
    {reg::mtrr_physbase(8), 8, "MTRR_PHYSBASE8_REG"},
    {reg::mtrr_physmask(8), 8, "MTRR_PHYSMASK8_REG"},
    {reg::mtrr_physbase(9), 8, "MTRR_PHYSBASE9_REG"},
    {reg::mtrr_physmask(9), 8, "MTRR_PHYSMASK9_REG"},
};

constexpr bool sorted_and_disjoint() {
    for (size_t i = 1; i < std::size(kRegs); ++i)
        if (kRegs[i - 1].offset + kRegs[i - 1].bytes > kRegs[i].offset) return false;
    return true;
}
static_assert(sorted_and_disjoint(), "register table must be sorted and non-overlapping");

}  // namespace

const RegInfo* find_reg(uint32_t offset) {
    auto it = std::lower_bound(std::begin(kRegs), std::end(kRegs), offset,
                               [](const RegInfo& r, uint32_t off) { return r.offset < off; });
    return (it != std::end(kRegs) && it->offset == offset) ? &*it : nullptr;
}

Cap Cap::decode(uint64_t v) {
    Cap c;
    c.nd = uint8_t(bits(v, 2, 0));
    c.afl = bit(v, 3);
    c.rwbf = bit(v, 4);
    c.plmr = bit(v, 5);
    c.phmr = bit(v, 6);
    c.cm = bit(v, 7);
    c.sagaw = uint8_t(bits(v, 12, 8));
    c.mgaw = uint8_t(bits(v, 21, 16));
    c.zlr = bit(v, 22);
    c.fro = uint16_t(bits(v, 33, 24));
    c.sllps = uint8_t(bits(v, 37, 34));
    c.psi = bit(v, 39);
    c.nfr = uint8_t(bits(v, 47, 40));
    c.mamv = uint8_t(bits(v, 53, 48));
    c.dwd = bit(v, 54);
    c.drd = bit(v, 55);
    c.fl1gp = bit(v, 56);
    c.pi = bit(v, 59);
    c.fl5lp = bit(v, 60);
    c.ecmds = bit(v, 61);
    c.esirtps = bit(v, 62);
    c.esrtps = bit(v, 63);
    return c;
}

uint64_t Cap::encode() const {
    uint64_t v = 0;
    v = set_bits(v, 2, 0, nd);
    v = set_bit(v, 3, afl);
    v = set_bit(v, 4, rwbf);
    v = set_bit(v, 5, plmr);
    v = set_bit(v, 6, phmr);
    v = set_bit(v, 7, cm);
    v = set_bits(v, 12, 8, sagaw);
    v = set_bits(v, 21, 16, mgaw);
    v = set_bit(v, 22, zlr);
    v = set_bits(v, 33, 24, fro);
    v = set_bits(v, 37, 34, sllps);
    v = set_bit(v, 39, psi);
    v = set_bits(v, 47, 40, nfr);
    v = set_bits(v, 53, 48, mamv);
    v = set_bit(v, 54, dwd);
    v = set_bit(v, 55, drd);
    v = set_bit(v, 56, fl1gp);
    v = set_bit(v, 59, pi);
    v = set_bit(v, 60, fl5lp);
    v = set_bit(v, 61, ecmds);
    v = set_bit(v, 62, esirtps);
    v = set_bit(v, 63, esrtps);
    return v;
}

Ecap Ecap::decode(uint64_t v) {
    Ecap e;
    e.c = bit(v, 0);
    e.qi = bit(v, 1);
    e.dt = bit(v, 2);
    e.ir = bit(v, 3);
    e.eim = bit(v, 4);
    e.pt = bit(v, 6);
    e.sc = bit(v, 7);
    e.iro = uint16_t(bits(v, 17, 8));
    e.mhmv = uint8_t(bits(v, 23, 20));
    e.mts = bit(v, 25);
    e.nest = bit(v, 26);
    e.prs = bit(v, 29);
    e.ers = bit(v, 30);
    e.srs = bit(v, 31);
    e.nwfs = bit(v, 33);
    e.eafs = bit(v, 34);
    e.pss = uint8_t(bits(v, 39, 35));
    e.pasid = bit(v, 40);
    e.dit = bit(v, 41);
    e.pds = bit(v, 42);
    e.smts = bit(v, 43);
    e.vcs = bit(v, 44);
    e.slads = bit(v, 45);
    e.slts = bit(v, 46);
    e.flts = bit(v, 47);
    e.smpwcs = bit(v, 48);
    e.rps = bit(v, 49);
    e.pms = bit(v, 51);
    e.adms = bit(v, 52);
    e.rprivs = bit(v, 53);
    return e;
}

uint64_t Ecap::encode() const {
    uint64_t v = 0;
    v = set_bit(v, 0, c);
    v = set_bit(v, 1, qi);
    v = set_bit(v, 2, dt);
    v = set_bit(v, 3, ir);
    v = set_bit(v, 4, eim);
    v = set_bit(v, 6, pt);
    v = set_bit(v, 7, sc);
    v = set_bits(v, 17, 8, iro);
    v = set_bits(v, 23, 20, mhmv);
    v = set_bit(v, 25, mts);
    v = set_bit(v, 26, nest);
    v = set_bit(v, 29, prs);
    v = set_bit(v, 30, ers);
    v = set_bit(v, 31, srs);
    v = set_bit(v, 33, nwfs);
    v = set_bit(v, 34, eafs);
    v = set_bits(v, 39, 35, pss);
    v = set_bit(v, 40, pasid);
    v = set_bit(v, 41, dit);
    v = set_bit(v, 42, pds);
    v = set_bit(v, 43, smts);
    v = set_bit(v, 44, vcs);
    v = set_bit(v, 45, slads);
    v = set_bit(v, 46, slts);
    v = set_bit(v, 47, flts);
    v = set_bit(v, 48, smpwcs);
    v = set_bit(v, 49, rps);
    v = set_bit(v, 51, pms);
    v = set_bit(v, 52, adms);
    v = set_bit(v, 53, rprivs);
    return v;
}

FaultRecord FaultRecord::decode(uint64_t lo, uint64_t hi) {
    const uint64_t q[2] = {lo, hi};
    FaultRecord r;
    r.fi = lo & frcd::FI.mask();
    r.sid = uint16_t(frcd::SID.get(q));
    r.type = FaultReqType((frcd::T2.get(q) << 1) | frcd::T1.get(q));
    r.priv = frcd::PRIV.get(q);
    r.exe = frcd::EXE.get(q);
    r.pp = frcd::PP.get(q);
    r.fr = uint8_t(frcd::FR.get(q));
    r.pv = uint32_t(frcd::PV.get(q));
    r.at = AddrType(frcd::AT.get(q));
    r.f = frcd::F.get(q);
    return r;
}

std::array<uint64_t, 2> FaultRecord::encode() const {
    uint64_t q[2] = {fi & frcd::FI.mask(), 0};
    frcd::SID.put(q, sid);
    frcd::T2.put(q, uint64_t(type) >> 1);
    frcd::T1.put(q, uint64_t(type) & 1);
    frcd::PRIV.put(q, priv);
    frcd::EXE.put(q, exe);
    frcd::PP.put(q, pp);
    frcd::FR.put(q, fr);
    frcd::PV.put(q, pv);
    frcd::AT.put(q, uint64_t(at));
    frcd::F.put(q, f);
    return {q[0], q[1]};
}

}  // namespace iommusim::vtd
