// The record-line formatter: appends to a caller-owned buffer with std::to_chars so that the
// writer formats millions of records without allocating.
#include <charconv>

#include "core/why.h"
#include "traces/trace_line.h"

namespace iommusim::trace::detail {
namespace {

using SK = InvalidationScope::Kind;

void put_dec(std::string& out, uint64_t v) {
    char b[24];
    out.append(b, std::to_chars(b, b + sizeof b, v).ptr);
}

void put_hex(std::string& out, uint64_t v) {
    char b[24] = {'0', 'x'};
    out.append(b, std::to_chars(b + 2, b + sizeof b, v, 16).ptr);
}

void put_hex2(std::string& out, unsigned v) {
    static const char kHex[] = "0123456789abcdef";
    out += kHex[(v >> 4) & 15];
    out += kHex[v & 15];
}

void put_bdf(std::string& out, uint16_t rid) {
    put_hex2(out, rid >> 8);
    out += ':';
    put_hex2(out, (rid >> 3) & 0x1f);
    out += '.';
    out += char('0' + (rid & 7));
}

void put_requester(std::string& out, const Requester& req) {
    put_bdf(out, req.rid);
    if (req.has_pasid()) {
        out += '/';
        put_hex(out, req.pasid);
    }
}

void put_domain(std::string& out, uint32_t d) {
    out += " domain=";
    if (d == InvalidationScope::kAllDomains)
        out += '*';
    else
        put_dec(out, d);
}

void put_dir(std::string& out, Dir d) {
    out += " dir=";
    out += d == Dir::Read ? 'r' : d == Dir::Write ? 'w' : '?';
}

void put_perm(std::string& out, Perm p) {
    out += " perm=";
    if (p == kPermNone) out += '-';
    if (p & kPermR) out += 'r';
    if (p & kPermW) out += 'w';
    if (p & kPermX) out += 'x';
}

// The requester's PRIV/EXEC bits; absent (the common case) when clear.
void put_req_flags(std::string& out, const Requester& req) {
    if (req.priv) out += " priv=1";
    if (req.exec) out += " exec=1";
}

bool page_scope(SK k) {
    return k == SK::Page || k == SK::PasidPage || k == SK::DeviceTlb;
}

void put_scope(std::string& out, const InvalidationScope& s) {
    out += to_string(s.kind);
    put_domain(out, s.domain);
    if (s.pasid == InvalidationScope::kAllPasids) {
        out += " pasid=*";
    } else if (s.pasid != Requester::kNoPasid) {
        out += " pasid=";
        put_hex(out, s.pasid);
    }
    // Address and RID only where the scope uses them, unless set anyway (kept for round trip).
    if (page_scope(s.kind) || s.addr || s.order) {
        out += " addr=";
        put_hex(out, s.addr);
        out += " order=";
        put_dec(out, s.order);
    }
    if (s.kind == SK::ContextDevice || s.kind == SK::DeviceTlb || s.rid) {
        out += " rid=";
        put_bdf(out, s.rid);
    }
    if (s.rid_ignore) {
        out += " rid-ignore=";
        put_hex(out, s.rid_ignore);
    }
    if (s.leaf_only) out += " ih=1";
    if (s.global) out += " g=1";
}

}  // namespace

bool representable(const Record& r, std::string* why) {
    if (unsigned(r.kind) > unsigned(Kind::Fault)) return fail(why, "unknown record kind");
    if (r.kind == Kind::Invalidate) {
        const InvalidationScope& s = r.scope;
        if (unsigned(s.kind) > unsigned(SK::Wait)) return fail(why, "unknown invalidation scope");
        if (s.order > InvalidationScope::kWholeSpace)
            return fail(why, "invalidation order above 52");
        if (s.pasid != Requester::kNoPasid && s.pasid != InvalidationScope::kAllPasids &&
            s.pasid > Requester::kPasidMax)
            return fail(why, "invalidation PASID wider than 20 bits");
        const bool needs_pasid =
            s.kind == SK::Pasid || s.kind == SK::PasidPage || s.kind == SK::PasidCache;
        if (needs_pasid && s.pasid == Requester::kNoPasid)
            return fail(why, std::string(to_string(s.kind)) + " invalidation without a PASID");
        return true;
    }
    if (r.req.has_pasid() && r.req.pasid > Requester::kPasidMax)
        return fail(why, "requester PASID wider than 20 bits");
    if (r.kind == Kind::Map && r.perm > (kPermR | kPermW | kPermX))
        return fail(why, "unknown permission bits");
    if ((r.kind == Kind::Dma || r.kind == Kind::Fault) && unsigned(r.dir) > unsigned(Dir::Unknown))
        return fail(why, "unknown direction");
    return true;
}

void append_line(std::string& out, const Record& r) {
    put_dec(out, r.time_ns);
    switch (r.kind) {
        case Kind::Map:
            out += " map ";
            put_requester(out, r.req);
            out += " iova=";
            put_hex(out, r.iova);
            out += " pa=";
            put_hex(out, r.pa);
            out += " size=";
            put_hex(out, r.size);
            put_perm(out, r.perm);
            put_domain(out, r.domain);
            break;
        case Kind::Unmap:
            out += " unmap ";
            put_requester(out, r.req);
            out += " iova=";
            put_hex(out, r.iova);
            out += " size=";
            put_hex(out, r.size);
            put_domain(out, r.domain);
            break;
        case Kind::Invalidate:
            out += " inval ";
            put_scope(out, r.scope);
            return;
        case Kind::Dma:
            out += " dma ";
            put_requester(out, r.req);
            out += " iova=";
            put_hex(out, r.iova);
            out += " size=";
            if (r.size_known)
                put_dec(out, r.size);
            else
                out += '?';
            put_dir(out, r.dir);
            if (r.has_pa) {
                out += " pa=";
                put_hex(out, r.pa);
            }
            break;
        case Kind::Fault:
            out += " fault ";
            put_requester(out, r.req);
            out += " iova=";
            put_hex(out, r.iova);
            out += " reason=";
            put_hex(out, r.reason);
            if (r.dir != Dir::Unknown) put_dir(out, r.dir);
            break;
    }
    put_req_flags(out, r.req);
}

}  // namespace iommusim::trace::detail
