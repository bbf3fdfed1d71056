#include "vtd_walker.h"

#include <fmt/format.h>

#include <cstring>
#include <type_traits>

#include "vtd_fault.h"

namespace iommusim::vtd {

namespace {
constexpr unsigned idx(Addr a, unsigned level) {
    return unsigned(bits(a, 11 + 9 * level, 12 + 9 * (level - 1)));
}
constexpr unsigned level_shift(unsigned level) {
    return 12 + 9 * (level - 1);
}
bool canonical(Addr a, unsigned levels) {
    unsigned top = level_shift(levels) + 8;  // 47 for 4-level, 56 for 5-level
    uint64_t upper = a >> top;
    return upper == 0 || upper == (~0ULL >> top);
}
}  // namespace

void VtdWalker::reset(const Requester& req, Addr iova, Access access) {
    req_ = req;
    iova_ = iova;
    access_ = access;
    res_ = WalkResult{};
    res_.fault.addr = iova;
    write_pending_ = false;
    sl_.active = false;
    ctx_valid_ = false;
    dev_valid_ = false;
    entry_ok_ = false;
}

void VtdWalker::start(const Requester& req, Addr iova, Access access) {
    reset(req, iova, access);
    ctx_ = VtdContext{};  // no FPD from an earlier walk may suppress this one's root faults
    if (cfg_.rtaddr & above_haw(cfg_.haw))
        return fail(FaultKind::TableAccess, sm() ? kSmInvalidRootTableAddress : kFrRootTableAccess);
    if (!sm() && req.has_pasid()) return fail(FaultKind::Blocked, kSmTtm0RequestWithPasid);
    phase_ = Phase::Root;
    read_addr_ = cfg_.rtaddr + Addr(req.bus()) * 16;
    read_size_ = 16;
}

void VtdWalker::start_with_context(const VtdContext& ctx, const Requester& req, Addr iova,
                                   Access access) {
    reset(req, iova, access);
    ctx_ = ctx;
    if (req.has_pasid()) ctx_.priv = req.priv;  // the privilege travels with each request
    begin_paging();
}

static_assert(std::is_trivially_copyable_v<VtdContext> &&
              sizeof(VtdContext) <= sizeof(WalkContext::arch));

bool VtdContext::operator==(const VtdContext& o) const {
    return mode == o.mode && scalable == o.scalable && did == o.did && pasid == o.pasid &&
           priv == o.priv && sl_root == o.sl_root && sl_levels == o.sl_levels &&
           fl_root == o.fl_root && fl_levels == o.fl_levels && sre == o.sre && wpe == o.wpe &&
           slade == o.slade && slee == o.slee && fpd == o.fpd && complete == o.complete &&
           paside == o.paside && rid_priv == o.rid_priv && rid_pasid == o.rid_pasid &&
           pasid_dir_entries == o.pasid_dir_entries && pasid_dir == o.pasid_dir;
}

namespace {
WalkContext pack(const VtdContext& v, uint32_t tag, uint32_t pasid) {
    WalkContext c;
    c.tag = tag;
    c.pasid = pasid;
    c.complete = v.complete;
    std::memcpy(c.arch, &v, sizeof(v));
    return c;
}
VtdContext unpack(const WalkContext& c) {
    VtdContext v;
    std::memcpy(&v, c.arch, sizeof(v));
    return v;
}
}  // namespace

WalkContext VtdWalker::context() const {
    return pack(ctx_, ctx_.did, ctx_.pasid);
}

WalkContext VtdWalker::device_context() const {
    return sm() ? pack(dev_, 0, Requester::kNoPasid) : context();
}

void VtdWalker::resume(const WalkContext& c, const Requester& req, Addr iova, Access access) {
    const VtdContext v = unpack(c);
    if (v.complete) {
        if (!sm() && req.has_pasid()) {  // as start(): legacy mode blocks PASID requests
            reset(req, iova, access);
            ctx_ = VtdContext{};
            return fail(FaultKind::Blocked, kSmTtm0RequestWithPasid);
        }
        return start_with_context(v, req, iova, access);
    }
    reset(req, iova, access);  // a cached scalable-mode context entry: the PASID stage is next
    ctx_ = VtdContext{};
    ctx_.fpd = v.fpd;
    dev_ = v;
    enter_pasid_stage();
}

bool VtdWalker::same_context(const WalkContext& a, const WalkContext& b) const {
    return a.tag == b.tag && a.pasid == b.pasid && a.complete == b.complete &&
           unpack(a) == unpack(b);
}

bool VtdWalker::paging_entry(PagingEntry* out) const {
    if (!entry_ok_) return false;
    *out = entry_;
    return true;
}

void VtdWalker::keep_entry(uint64_t e, Perm above, uint8_t above_flags, bool leaf) {
    entry_ = PagingEntry{e, above, above_flags, leaf};
    entry_ok_ = true;
}

// The cached entry stands for the one the step would read, decoded with the rights the levels
// above had when it was cached (a paging-structure cache keeps them with the entry).
void VtdWalker::feed_cached(const PagingEntry& e) {
    entry_ok_ = false;
    if (phase_ != Phase::Paging) return;
    if (sl_.active) {
        sl_.perm = e.above;
        return feed_sl(e.value);
    }
    fl_.w = e.above_flags & 1;
    fl_.u = e.above_flags & 2;
    fl_.x = e.above_flags & 4;
    feed_fl(e.value);
}

WalkStep VtdWalker::next() {
    WalkStep s;
    if (write_pending_) {
        write_pending_ = false;
        ++res_.writes;
        s.kind = WalkStep::Kind::Write;
        s.stage = write_stage_;
        s.addr = write_addr_;
        s.size = 8;
        s.wdata = write_val_;
        return s;
    }
    switch (phase_) {
        case Phase::Done: return s;
        case Phase::Root: s.stage = WalkStage::Root; break;
        case Phase::Context: s.stage = WalkStage::Context; break;
        case Phase::PasidDir: s.stage = WalkStage::PasidDir; break;
        case Phase::PasidEntry: s.stage = WalkStage::PasidEntry; break;
        case Phase::Paging:
            if (!sl_.active && !fl_.entry_ready) {
                // Nested: the first-level entry's guest-physical address needs the second level.
                start_sl(SlPurpose::FlTable, fl_.table + Addr(idx(iova_, fl_.level)) * 8);
                if (phase_ == Phase::Done) return s;
            }
            if (sl_.active) {
                s.stage = WalkStage::SecondLevel;
                s.level = uint8_t(sl_.level);
                s.nested = sl_.purpose != SlPurpose::Primary;
                s.input = sl_.input;
                s.shift = uint8_t(level_shift(sl_.level));
                read_addr_ = sl_.table + Addr(idx(sl_.input, sl_.level)) * 8;
            } else {
                s.stage = WalkStage::FirstLevel;
                s.level = uint8_t(fl_.level);
                s.input = iova_;
                s.shift = uint8_t(level_shift(fl_.level));
                read_addr_ = fl_.entry_hpa;
            }
            read_size_ = 8;
            break;
    }
    s.kind = WalkStep::Kind::Read;
    s.addr = read_addr_;
    s.size = read_size_;
    ++res_.reads;
    return s;
}

void VtdWalker::feed(const uint8_t* d) {
    entry_ok_ = false;
    switch (phase_) {
        case Phase::Root: return feed_root(d);
        case Phase::Context: return feed_context(d);
        case Phase::PasidDir: return feed_pasid_dir(d);
        case Phase::PasidEntry: return feed_pasid_entry(d);
        case Phase::Paging: return sl_.active ? feed_sl(load_le64(d)) : feed_fl(load_le64(d));
        case Phase::Done: return;
    }
}

void VtdWalker::feed_error() {
    entry_ok_ = false;
    switch (phase_) {
        case Phase::Root:
            return fail(FaultKind::TableAccess, sm() ? kSmRootAccess : kFrRootTableAccess);
        case Phase::Context:
            return fail(FaultKind::TableAccess, sm() ? kSmContextAccess : kFrContextTableAccess);
        case Phase::PasidDir: return fail(FaultKind::TableAccess, kSmPasidDirAccess);
        case Phase::PasidEntry: return fail(FaultKind::TableAccess, kSmPasidEntryAccess);
        case Phase::Paging:
            if (sl_.active)
                return fail(FaultKind::TableAccess, sm() ? kSmSlAccess : kFrPagingEntryAccess,
                            uint8_t(sl_.level));
            return fail(FaultKind::TableAccess,
                        fl_.level == ctx_.fl_levels ? kSmFlPml4Access : kSmFlAccess,
                        uint8_t(fl_.level));
        case Phase::Done: return;
    }
}

void VtdWalker::feed_root(const uint8_t* d) {
    const unsigned devfn = req_.devfn();
    if (!sm()) {
        RootEntry r{load_le64(d), load_le64(d + 8)};
        if (!r.p()) return fail(FaultKind::NotPresent, kFrRootNotPresent);
        if (r.reserved(cfg_.haw)) return fail(FaultKind::ReservedBit, kFrRootReserved);
        phase_ = Phase::Context;
        read_addr_ = r.ctp() + Addr(devfn) * 16;
        read_size_ = 16;
        return;
    }
    ScalableRootEntry r{load_le64(d), load_le64(d + 8)};
    bool upper = devfn >= 128;
    if (!(upper ? r.up() : r.lp())) return fail(FaultKind::NotPresent, kSmRootNotPresent);
    if (r.reserved(cfg_.haw)) return fail(FaultKind::ReservedBit, kSmRootReserved);
    phase_ = Phase::Context;
    read_addr_ = (upper ? r.uctp() : r.lctp()) + Addr(devfn & 0x7f) * 32;
    read_size_ = 32;
}

void VtdWalker::feed_context(const uint8_t* d) {
    if (!sm()) {
        ContextEntry c{load_le64(d), load_le64(d + 8)};
        ctx_.fpd = c.fpd();  // FPD is honoured even when P is clear
        if (!c.p()) return fail(FaultKind::NotPresent, kFrContextNotPresent);
        TranslationType tt = c.tt();
        // With TT=10b (pass-through) SLPTPTR is ignored, so its high bits are not reserved.
        if (c.reserved(tt == TranslationType::PassThrough ? 64 : cfg_.haw))
            return fail(FaultKind::ReservedBit, kFrContextReserved);
        // TT 01b needs ECAP.DT and 10b ECAP.PT; 11b is reserved.
        if (tt == TranslationType::Reserved ||
            (tt == TranslationType::PassThrough && !cfg_.pass_through) ||
            (tt == TranslationType::DeviceTlb && !cfg_.device_tlb))
            return fail(FaultKind::InvalidEntry, kFrContextInvalid);
        if (tt != TranslationType::PassThrough &&
            (c.aw() < kAw39 || c.aw() > kAw57 || !bit(cfg_.sagaw, c.aw())))
            return fail(FaultKind::InvalidEntry, kFrContextInvalid);
        ctx_.scalable = false;
        ctx_.mode = tt == TranslationType::PassThrough ? VtdContext::Mode::PassThrough
                                                       : VtdContext::Mode::SecondLevel;
        ctx_.did = c.did();
        ctx_.sl_root = c.slptptr();
        ctx_.sl_levels = aw_levels(c.aw());
        ctx_.pasid = Requester::kNoPasid;
        ctx_.priv = false;
        return begin_paging();
    }
    ScalableContextEntry c;
    for (int i = 0; i < 4; ++i) c.qw[i] = load_le64(d + 8 * i);
    ctx_.fpd = c.fpd();
    if (!c.p()) return fail(FaultKind::NotPresent, kSmContextNotPresent);
    if (c.reserved(cfg_.haw)) return fail(FaultKind::ReservedBit, kSmContextReserved);
    dev_ = VtdContext{};
    dev_.complete = false;
    dev_.scalable = true;
    dev_.fpd = c.fpd();
    dev_.paside = c.paside();
    dev_.rid_pasid = c.rid_pasid();
    dev_.rid_priv = c.rid_priv();
    dev_.pasid_dir_entries = c.pasid_dir_entries();
    dev_.pasid_dir = c.pasiddirptr();
    enter_pasid_stage();
}

// From the decoded scalable-mode context entry (dev_, read or cached) to the PASID directory.
void VtdWalker::enter_pasid_stage() {
    if (req_.has_pasid() && !dev_.paside) return fail(FaultKind::Blocked, kSmContextPasidDisabled);
    ctx_.scalable = true;
    ctx_.pasid = req_.has_pasid() ? req_.pasid : dev_.rid_pasid;
    ctx_.priv = req_.has_pasid() ? req_.priv : dev_.rid_priv;
    if ((ctx_.pasid >> 6) >= dev_.pasid_dir_entries)
        return fail(FaultKind::AddressRange, kSmPasidTooLarge);
    dev_valid_ = true;
    phase_ = Phase::PasidDir;
    read_addr_ = dev_.pasid_dir + Addr(ctx_.pasid >> 6) * 8;
    read_size_ = 8;
}

void VtdWalker::feed_pasid_dir(const uint8_t* d) {
    PasidDirEntry e{load_le64(d)};
    ctx_.fpd = ctx_.fpd || e.fpd();
    if (!e.p()) return fail(FaultKind::NotPresent, kSmPasidDirNotPresent);
    if (e.reserved(cfg_.haw)) return fail(FaultKind::ReservedBit, kSmPasidDirReserved);
    phase_ = Phase::PasidEntry;
    read_addr_ = e.smptblptr() + Addr(ctx_.pasid & 0x3f) * 64;
    read_size_ = 64;
}

void VtdWalker::feed_pasid_entry(const uint8_t* d) {
    PasidEntry p;
    for (int i = 0; i < 8; ++i) p.qw[i] = load_le64(d + 8 * i);
    ctx_.fpd = ctx_.fpd || p.fpd();
    if (!p.p()) return fail(FaultKind::NotPresent, kSmPasidEntryNotPresent);
    if (p.reserved(cfg_.haw)) return fail(FaultKind::ReservedBit, kSmPasidEntryReserved);
    using Mode = VtdContext::Mode;
    switch (p.pgtt()) {
        case unsigned(Pgtt::FirstLevel): ctx_.mode = Mode::FirstLevel; break;
        case unsigned(Pgtt::SecondLevel): ctx_.mode = Mode::SecondLevel; break;
        case unsigned(Pgtt::Nested):
            if (!cfg_.nested) return fail(FaultKind::InvalidEntry, kSmPasidEntryInvalid);
            ctx_.mode = Mode::Nested;
            break;
        case unsigned(Pgtt::PassThrough):
            if (!cfg_.pass_through) return fail(FaultKind::InvalidEntry, kSmPasidEntryInvalid);
            ctx_.mode = Mode::PassThrough;
            break;
        default: return fail(FaultKind::InvalidEntry, kSmPasidEntryInvalid);
    }
    bool uses_sl = ctx_.mode == Mode::SecondLevel || ctx_.mode == Mode::Nested;
    bool uses_fl = ctx_.mode == Mode::FirstLevel || ctx_.mode == Mode::Nested;
    if (uses_sl && (p.aw() < kAw39 || p.aw() > kAw57 || !bit(cfg_.sagaw, p.aw())))
        return fail(FaultKind::InvalidEntry, kSmPasidEntryInvalid);
    if (uses_fl && (p.flpm() > 1 || (p.flpm() == 1 && !cfg_.fl_5level)))
        return fail(FaultKind::InvalidEntry, kSmPasidEntryInvalid);
    ctx_.did = p.did();
    ctx_.sl_root = p.slptptr();
    ctx_.sl_levels = aw_levels(p.aw());
    ctx_.fl_root = p.flptr();
    ctx_.fl_levels = 4 + p.flpm();
    ctx_.sre = p.sre();
    ctx_.wpe = p.wpe();
    ctx_.slade = p.slade();
    ctx_.slee = p.slee();
    begin_paging();
}

void VtdWalker::begin_paging() {
    using Mode = VtdContext::Mode;
    ctx_valid_ = true;
    phase_ = Phase::Paging;
    const bool uses_fl = ctx_.mode == Mode::FirstLevel || ctx_.mode == Mode::Nested;
    if (uses_fl && ctx_.priv && !ctx_.sre) return fail(FaultKind::Blocked, kSmPasidSreClear);
    switch (ctx_.mode) {
        case Mode::PassThrough:
            if (iova_ & ~bit_mask(cfg_.haw - 1, 0))
                return fail(FaultKind::AddressRange,
                            sm() ? kSmAddressBeyondHwMax : kFrAddressBeyondMgaw);
            return finish(iova_, 12, kPermR | kPermW | kPermX);
        case Mode::SecondLevel: return start_sl(SlPurpose::Primary, iova_);
        case Mode::FirstLevel:
        case Mode::Nested:
            if (!canonical(iova_, ctx_.fl_levels))
                return fail(FaultKind::AddressRange, kSmNonCanonical);
            fl_.level = ctx_.fl_levels;
            fl_.table = ctx_.fl_root;
            fl_.w = fl_.u = fl_.x = true;
            fl_.entry_ready = ctx_.mode == Mode::FirstLevel;
            fl_.entry_hpa = fl_.table + Addr(idx(iova_, fl_.level)) * 8;
            if (fl_.entry_ready && (fl_.table & above_haw(cfg_.haw)))
                return fail(FaultKind::ReservedBit, kSmFlReserved, uint8_t(fl_.level));
            return;
    }
}

void VtdWalker::start_sl(SlPurpose purpose, Addr input) {
    unsigned width = std::min(aw_bits(levels_to_aw(ctx_.sl_levels)), sm() ? 64u : cfg_.mgaw);
    if (width < 64 && (input >> width)) {
        uint16_t r = !sm()                           ? kFrAddressBeyondMgaw
                     : purpose == SlPurpose::FlTable ? kSmFlAddressBeyondMgawNested
                                                     : kSmAddressBeyondHwMax;
        return fail(FaultKind::AddressRange, r);
    }
    sl_.purpose = purpose;
    sl_.active = true;
    sl_.input = input;
    sl_.table = ctx_.sl_root;
    sl_.level = ctx_.sl_levels;
    sl_.perm = kPermR | kPermW | kPermX;
    if (sl_.table & above_haw(cfg_.haw))
        fail(FaultKind::ReservedBit, sm() ? kSmSlInvalidPointer : kFrPagingEntryReserved);
}

// Reason for a second-level entry that is not present or does not grant the access.
uint16_t VtdWalker::sl_denied_reason() const {
    // An AtomicOp needs both rights: it is a read fault unless only W is missing.
    bool write = access_ == Access::Write || (access_ == Access::ReadWrite && (sl_.perm & kPermR));
    if (!sm()) return write ? kFrWrite : kFrRead;
    switch (sl_.purpose) {
        case SlPurpose::Primary: return write ? kSmNoWrite : kSmNoRead;
        case SlPurpose::FlTable:
            return fl_.level == ctx_.fl_levels ? kSmFlPml4ReadNested : kSmFlReadNested;
        case SlPurpose::Output: return kSmSlPermission;
    }
    return kSmSlPermission;
}

void VtdWalker::feed_sl(uint64_t e) {
    const unsigned level = sl_.level;
    const bool x_present = ctx_.slee && bit(e, sl::X);
    if (!(e & 3) && !x_present) {
        sl_.perm = kPermNone;  // neither right granted: the reason follows the request
        return fail(FaultKind::NotPresent, sl_denied_reason(), uint8_t(level));
    }
    const bool large = level > 1 && bit(e, sl::PS);
    const bool leaf = level == 1 || large;
    // SNP and TM exist only in leaves; in table entries bits 11 and 62 are reserved.
    uint64_t rsvd = above_haw(cfg_.haw) | (cfg_.snoop_control && leaf ? 0 : 1ULL << sl::SNP);
    if (!leaf) rsvd |= 1ULL << sl::TM;
    if (level >= 4) rsvd |= 1ULL << sl::PS;
    if ((level == 2 && large && !cfg_.sl_2m) || (level == 3 && large && !cfg_.sl_1g))
        rsvd |= 1ULL << sl::PS;
    if (large) rsvd |= bit_mask(level_shift(level) - 1, 12);
    if ((large || level == 1) && !cfg_.device_tlb) rsvd |= 1ULL << sl::TM;
    if (e & rsvd)
        return fail(FaultKind::ReservedBit, sm() ? kSmSlReserved : kFrPagingEntryReserved,
                    uint8_t(level));

    Perm p = Perm((bit(e, sl::R) ? kPermR : 0) | (bit(e, sl::W) ? kPermW : 0));
    p |= ctx_.slee ? (bit(e, sl::X) ? kPermX : 0) : ((p & kPermR) ? kPermX : 0);
    keep_entry(e, sl_.perm, 0, leaf);
    sl_.perm &= p;
    const bool final_write = leaf && sl_.purpose != SlPurpose::FlTable && access_ != Access::Read;
    if (ctx_.slade && (!bit(e, sl::A) || (final_write && !bit(e, sl::D)))) {
        write_pending_ = true;
        write_stage_ = WalkStage::SecondLevel;
        write_addr_ = read_addr_;
        write_val_ = e | (1ULL << sl::A) | (final_write ? 1ULL << sl::D : 0);
        entry_.value = write_val_;
    }
    if (!leaf) {
        sl_.table = e & bit_mask(51, 12);
        --sl_.level;
        return;
    }
    // Execute requests need X only where second-level execute is enabled (SLEE).
    Perm need =
        sl_.purpose == SlPurpose::FlTable ? kPermR : perm_needed(access_, ctx_.slee && req_.exec);
    if (!permits(sl_.perm, need)) {
        write_pending_ = false;
        entry_.value = e;
        return fail(FaultKind::Permission, sl_denied_reason(), uint8_t(level));
    }
    const unsigned shift = level_shift(level);
    res_.tr.mem_type = uint8_t(bits(e, sl::EMT_HI, sl::EMT_LO));
    sl_done((e & bit_mask(51, shift)) | (sl_.input & bit_mask(shift - 1, 0)), shift);
}

void VtdWalker::sl_done(Addr out, unsigned shift) {
    sl_.active = false;
    switch (sl_.purpose) {
        case SlPurpose::Primary: return finish(out, shift, sl_.perm);
        case SlPurpose::FlTable:
            fl_.entry_hpa = out;
            fl_.entry_ready = true;
            fl_.table_perm = sl_.perm;
            return;
        case SlPurpose::Output:
            return finish(out, std::min(shift, fl_.shift),
                          Perm(sl_.perm & (kPermR | (fl_.w ? kPermW : 0) | (fl_.x ? kPermX : 0))));
    }
}

void VtdWalker::feed_fl(uint64_t e) {
    const unsigned level = fl_.level;
    const bool nested = ctx_.mode == VtdContext::Mode::Nested;
    if (!bit(e, fl::P)) return fail(FaultKind::NotPresent, kSmFlNotPresent, uint8_t(level));
    const bool large = (level == 2 || level == 3) && bit(e, fl::PS);
    uint64_t rsvd = above_haw(cfg_.haw);
    if (level >= 4 || (level == 3 && large && !cfg_.fl_1g)) rsvd |= 1ULL << fl::PS;
    if (large) rsvd |= bit_mask(level_shift(level) - 1, 13);  // bit 12 is PAT in large leaves
    if (e & rsvd) return fail(FaultKind::ReservedBit, kSmFlReserved, uint8_t(level));

    const bool leaf = level == 1 || large;
    keep_entry(e, kPermNone, uint8_t((fl_.w ? 1 : 0) | (fl_.u ? 2 : 0) | (fl_.x ? 4 : 0)), leaf);
    fl_.w = fl_.w && bit(e, fl::RW);
    fl_.u = fl_.u && bit(e, fl::US);
    fl_.x = fl_.x && !bit(e, fl::XD);
    const bool write = access_ != Access::Read;
    if (leaf) {
        if (!ctx_.priv && !fl_.u)
            return fail(FaultKind::Permission, kSmUserSupervisor, uint8_t(level));
        if (write && !fl_.w && (!ctx_.priv || ctx_.wpe))
            return fail(FaultKind::Permission, kSmNoWrite, uint8_t(level));
        if (req_.exec && !fl_.x) return fail(FaultKind::Permission, kSmNoExecute, uint8_t(level));
        if (ctx_.priv && !ctx_.wpe) fl_.w = true;  // supervisor writes ignore R/W without WPE
    }
    if (!bit(e, fl::A) || (leaf && write && !bit(e, fl::D))) {
        if (nested && !(fl_.table_perm & kPermW))
            return fail(FaultKind::Permission, kSmFlWriteNested, uint8_t(level));
        write_pending_ = true;
        write_stage_ = WalkStage::FirstLevel;
        write_addr_ = fl_.entry_hpa;
        write_val_ = e | (1ULL << fl::A) | (leaf && write ? 1ULL << fl::D : 0);
        entry_.value = write_val_;
    }
    if (!leaf) {
        fl_.table = e & bit_mask(51, 12);
        --fl_.level;
        fl_.entry_ready = !nested;
        fl_.entry_hpa = fl_.table + Addr(idx(iova_, fl_.level)) * 8;
        return;
    }
    const unsigned shift = level_shift(level);
    Addr out = (e & bit_mask(51, shift)) | (iova_ & bit_mask(shift - 1, 0));
    if (!nested)
        return finish(out, shift, Perm(kPermR | (fl_.w ? kPermW : 0) | (fl_.x ? kPermX : 0)));
    fl_.shift = shift;
    start_sl(SlPurpose::Output, out);
}

void VtdWalker::finish(Addr out, unsigned shift, Perm perm) {
    phase_ = Phase::Done;
    res_.tr.out = out;
    res_.tr.page_shift = uint8_t(shift);
    res_.tr.perm = perm;
    res_.tr.tag = ctx_.did;
}

void VtdWalker::fail(FaultKind kind, uint16_t reason, uint8_t level) {
    phase_ = Phase::Done;
    sl_.active = false;
    res_.fault.kind = kind;
    res_.fault.reason = reason;
    res_.fault.level = level;
    res_.fault.suppressed = ctx_.fpd;
}

std::string VtdWalker::describe(const WalkStep& s, const uint8_t* d) const {
    switch (s.stage) {
        case WalkStage::Root:
            if (!cfg_.scalable) {
                RootEntry r{load_le64(d), load_le64(d + 8)};
                return fmt::format("root[bus {:#04x}]: P={} CTP={:#x}", req_.bus(), r.p(), r.ctp());
            } else {
                ScalableRootEntry r{load_le64(d), load_le64(d + 8)};
                return fmt::format("sm-root[bus {:#04x}]: LP={} LCTP={:#x} UP={} UCTP={:#x}",
                                   req_.bus(), r.lp(), r.lctp(), r.up(), r.uctp());
            }
        case WalkStage::Context:
            if (!cfg_.scalable) {
                ContextEntry c{load_le64(d), load_le64(d + 8)};
                return fmt::format(
                    "context[devfn {:#04x}]: P={} FPD={} TT={} SLPTPTR={:#x} AW={} DID={}",
                    req_.devfn(), c.p(), c.fpd(), unsigned(c.tt()), c.slptptr(), c.aw(), c.did());
            } else {
                ScalableContextEntry c;
                for (int i = 0; i < 4; ++i) c.qw[i] = load_le64(d + 8 * i);
                return fmt::format(
                    "sm-context[devfn {:#04x}]: P={} FPD={} DTE={} PASIDE={} PRE={} PDTS={} "
                    "PASIDDIRPTR={:#x} RID_PASID={:#x} RID_PRIV={}",
                    req_.devfn(), c.p(), c.fpd(), c.dte(), c.paside(), c.pre(), c.pdts(),
                    c.pasiddirptr(), c.rid_pasid(), c.rid_priv());
            }
        case WalkStage::PasidDir: {
            PasidDirEntry e{load_le64(d)};
            return fmt::format("pasid-dir: P={} FPD={} SMPTBLPTR={:#x}", e.p(), e.fpd(),
                               e.smptblptr());
        }
        case WalkStage::PasidEntry: {
            PasidEntry p;
            for (int i = 0; i < 8; ++i) p.qw[i] = load_le64(d + 8 * i);
            return fmt::format(
                "pasid-entry: P={} FPD={} PGTT={} AW={} SLPTPTR={:#x} DID={} SLADE={} FLPTR={:#x} "
                "FLPM={} SRE={} WPE={}",
                p.p(), p.fpd(), p.pgtt(), p.aw(), p.slptptr(), p.did(), p.slade(), p.flptr(),
                p.flpm(), p.sre(), p.wpe());
        }
        case WalkStage::SecondLevel: {
            uint64_t e = load_le64(d);
            return fmt::format("sl-pte: R={} W={} X={} PS={} A={} D={} SNP={} ADDR={:#x}",
                               bit(e, sl::R), bit(e, sl::W), bit(e, sl::X), bit(e, sl::PS),
                               bit(e, sl::A), bit(e, sl::D), bit(e, sl::SNP), e & bit_mask(51, 12));
        }
        case WalkStage::FirstLevel: {
            uint64_t e = load_le64(d);
            return fmt::format("fl-pte: P={} RW={} US={} A={} D={} PS={} XD={} ADDR={:#x}",
                               bit(e, fl::P), bit(e, fl::RW), bit(e, fl::US), bit(e, fl::A),
                               bit(e, fl::D), bit(e, fl::PS), bit(e, fl::XD), e & bit_mask(51, 12));
        }
        case WalkStage::Tce: break;
    }
    return "?";
}

}  // namespace iommusim::vtd
