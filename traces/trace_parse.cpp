// The record-line parser: hand-written over a string_view with std::from_chars, because replay
// reads millions of lines and must not be limited by parsing (no iostreams, no regex, no
// allocation unless the line is bad).
#include <charconv>
#include <cstring>

#include "core/why.h"
#include "traces/trace_line.h"

namespace iommusim::trace::detail {
namespace {

using SK = InvalidationScope::Kind;

// One bit per field key; the order is the order in which missing fields are reported.
enum Field : uint32_t {
    kIova = 1u << 0,
    kPa = 1u << 1,
    kSize = 1u << 2,
    kPerm = 1u << 3,
    kDomain = 1u << 4,
    kDir = 1u << 5,
    kReason = 1u << 6,
    kPasid = 1u << 7,
    kAddr = 1u << 8,
    kOrder = 1u << 9,
    kRid = 1u << 10,
    kRidIgnore = 1u << 11,
    kIh = 1u << 12,
    kG = 1u << 13,
    kPriv = 1u << 14,
    kExec = 1u << 15,
};
constexpr unsigned kNumFields = 16;

struct FieldInfo {
    std::string_view key;
    const char* expected;  // the field as the error message asks for it
};
constexpr FieldInfo kFields[kNumFields] = {
    {"iova", "iova=<hex>"},
    {"pa", "pa=<hex>"},
    {"size", "size=<hex or decimal>"},
    {"perm", "perm=r|w|rw|-"},
    {"domain", "domain=<decimal>|*"},
    {"dir", "dir=r|w|?"},
    {"reason", "reason=<hex>"},
    {"pasid", "pasid=<hex>|*"},
    {"addr", "addr=<hex>"},
    {"order", "order=<0..52>"},
    {"rid", "rid=BB:DD.F"},
    {"rid-ignore", "rid-ignore=<hex>"},
    {"ih", "ih=0|1"},
    {"g", "g=0|1"},
    {"priv", "priv=0|1"},
    {"exec", "exec=0|1"},
};
constexpr const char* kDmaSizeExpected = "size=<decimal or hex>|?";

constexpr uint32_t kReqFlags = kPriv | kExec;

// Fields a record kind may carry, and those it must carry.
uint32_t allowed(Kind k) {
    switch (k) {
        case Kind::Map: return kIova | kPa | kSize | kPerm | kDomain | kReqFlags;
        case Kind::Unmap: return kIova | kSize | kDomain | kReqFlags;
        case Kind::Dma: return kIova | kSize | kDir | kPa | kReqFlags;
        case Kind::Fault: return kIova | kReason | kDir | kReqFlags;
        case Kind::Invalidate:
            return kDomain | kPasid | kAddr | kOrder | kRid | kRidIgnore | kIh | kG;
    }
    return 0;
}

uint32_t required(Kind k, SK scope) {
    switch (k) {
        case Kind::Map: return kIova | kPa | kSize | kPerm | kDomain;
        case Kind::Unmap: return kIova | kSize | kDomain;
        case Kind::Dma: return kIova | kSize | kDir;
        case Kind::Fault: return kIova | kReason;
        case Kind::Invalidate: break;
    }
    switch (scope) {
        case SK::Global:
        case SK::ContextGlobal:
        case SK::Wait: return 0;
        case SK::Domain:
        case SK::ContextDomain: return kDomain;
        case SK::Page: return kDomain | kAddr | kOrder;
        case SK::Pasid:
        case SK::PasidCache: return kDomain | kPasid;
        case SK::PasidPage: return kDomain | kPasid | kAddr | kOrder;
        case SK::ContextDevice: return kDomain | kRid;
        case SK::DeviceTlb: return kRid | kAddr | kOrder;
    }
    return 0;
}

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::Map: return "map";
        case Kind::Unmap: return "unmap";
        case Kind::Invalidate: return "inval";
        case Kind::Dma: return "dma";
        case Kind::Fault: return "fault";
    }
    return "?";
}

bool blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

// Splits a line into blank-separated tokens.
struct Tokens {
    const char* p;
    const char* e;
    std::string_view next() {
        while (p < e && blank(*p)) ++p;
        const char* b = p;
        while (p < e && !blank(*p)) ++p;
        return {b, size_t(p - b)};
    }
};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_dec(std::string_view s, uint64_t& v) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    return ec == std::errc() && end == s.data() + s.size();
}

bool has_hex_prefix(std::string_view s) {
    return s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

bool parse_hex(std::string_view s, uint64_t& v) {
    if (!has_hex_prefix(s)) return false;
    auto [end, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
    return ec == std::errc() && end == s.data() + s.size();
}

bool parse_hex_or_dec(std::string_view s, uint64_t& v) {
    return has_hex_prefix(s) ? parse_hex(s, v) : parse_dec(s, v);
}

bool parse_bool(std::string_view s, bool& v) {
    if (s.size() != 1 || (s[0] != '0' && s[0] != '1')) return false;
    v = s[0] == '1';
    return true;
}

// "BB:DD.F": exactly two hex digits of bus, two of device (at most 0x1f), one function digit.
bool parse_bdf(std::string_view s, uint16_t& rid) {
    if (s.size() != 7 || s[2] != ':' || s[5] != '.') return false;
    const int b1 = hex_digit(s[0]), b0 = hex_digit(s[1]), d1 = hex_digit(s[3]),
              d0 = hex_digit(s[4]);
    if (b1 < 0 || b0 < 0 || d1 < 0 || d0 < 0 || s[6] < '0' || s[6] > '7') return false;
    const int dev = d1 * 16 + d0;
    if (dev > 0x1f) return false;
    rid = uint16_t(((b1 * 16 + b0) << 8) | (dev << 3) | (s[6] - '0'));
    return true;
}

// "BB:DD.F" or "BB:DD.F/<pasid>", the PASID hex with or without 0x.
bool parse_requester(std::string_view s, Requester& req) {
    if (!parse_bdf(s.substr(0, 7), req.rid)) return false;
    if (s.size() == 7) return true;
    if (s[7] != '/') return false;
    std::string_view p = s.substr(8);
    if (has_hex_prefix(p)) p.remove_prefix(2);
    uint64_t v = 0;
    if (p.empty() || p.size() > 8) return false;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v, 16);
    if (ec != std::errc() || end != p.data() + p.size() || v > Requester::kPasidMax) return false;
    req.pasid = uint32_t(v);
    return true;
}

bool parse_perm(std::string_view s, Perm& p) {
    if (s == "-") return p = kPermNone, true;
    p = kPermNone;
    size_t i = 0;
    if (i < s.size() && s[i] == 'r') p |= kPermR, ++i;
    if (i < s.size() && s[i] == 'w') p |= kPermW, ++i;
    if (i < s.size() && s[i] == 'x') p |= kPermX, ++i;
    return i > 0 && i == s.size();
}

bool parse_dir(std::string_view s, Dir& d) {
    if (s.size() != 1) return false;
    switch (s[0]) {
        case 'r': d = Dir::Read; return true;
        case 'w': d = Dir::Write; return true;
        case '?': d = Dir::Unknown; return true;
    }
    return false;
}

bool parse_scope(std::string_view s, SK& k) {
    for (unsigned i = 0; i <= unsigned(SK::Wait); ++i)
        if (s == to_string(SK(i))) return k = SK(i), true;
    return false;
}

int field_index(std::string_view key) {
    for (unsigned i = 0; i < kNumFields; ++i)
        if (kFields[i].key == key) return int(i);
    return -1;
}

// "(expected iova, size, domain, priv or exec)" for the fields `mask` allows.
std::string field_list(uint32_t mask) {
    std::string out;
    unsigned left = 0;
    for (unsigned i = 0; i < kNumFields; ++i) left += (mask >> i) & 1;
    for (unsigned i = 0; i < kNumFields; ++i) {
        if (!(mask & (1u << i))) continue;
        out += kFields[i].key;
        --left;
        if (left > 1) out += ", ";
        if (left == 1) out += " or ";
    }
    return out;
}

// Stores one field's value; false if the value does not have the field's form.
bool set_field(unsigned f, std::string_view v, Record& r) {
    uint64_t n = 0;
    InvalidationScope& s = r.scope;
    switch (1u << f) {
        case kIova: return parse_hex(v, r.iova);
        case kPa:
            if (r.kind == Kind::Dma) r.has_pa = true;
            return parse_hex(v, r.pa);
        case kSize:
            if (r.kind == Kind::Dma && v == "?") return r.size_known = false, true;
            return parse_hex_or_dec(v, r.size);
        case kPerm: return parse_perm(v, r.perm);
        case kDomain:
            if (v == "*")
                n = InvalidationScope::kAllDomains;
            else if (!parse_dec(v, n) || n > 0xFFFFFFFFu)
                return false;
            r.domain = uint32_t(n);
            if (r.kind == Kind::Invalidate) s.domain = r.domain;
            return true;
        case kDir: return parse_dir(v, r.dir);
        case kReason:
            if (!parse_hex(v, n) || n > 0xFFFF) return false;
            return r.reason = uint16_t(n), true;
        case kPasid:
            if (v == "*") return s.pasid = InvalidationScope::kAllPasids, true;
            if (!parse_hex(v, n) || n > Requester::kPasidMax) return false;
            return s.pasid = uint32_t(n), true;
        case kAddr: return parse_hex(v, s.addr);
        case kOrder:
            if (!parse_dec(v, n) || n > InvalidationScope::kWholeSpace) return false;
            return s.order = uint8_t(n), true;
        case kRid: return parse_bdf(v, s.rid);
        case kRidIgnore:
            if (!parse_hex(v, n) || n > 0xFFFF) return false;
            return s.rid_ignore = uint16_t(n), true;
        case kIh: return parse_bool(v, s.leaf_only);
        case kG: return parse_bool(v, s.global);
        case kPriv: return parse_bool(v, r.req.priv);
        case kExec: return parse_bool(v, r.req.exec);
    }
    return false;
}

const char* expected(unsigned f, Kind k) {
    return (1u << f) == kSize && k == Kind::Dma ? kDmaSizeExpected : kFields[f].expected;
}

}  // namespace

std::string quoted(std::string_view s) {
    constexpr size_t kMax = 48;
    std::string out = "'";
    for (size_t i = 0; i < s.size() && i < kMax; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += char(c);
        } else {
            static const char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    if (s.size() > kMax) out += "...";
    return out + "'";
}

bool parse_line(std::string_view line, Record& r, std::string* why) {
    r = Record{};
    Tokens tok{line.data(), line.data() + line.size()};

    const std::string_view time = tok.next();
    if (!parse_dec(time, r.time_ns))
        return fail(why, "expected time in ns (decimal), got " + quoted(time));

    const std::string_view kind = tok.next();
    if (kind == "map")
        r.kind = Kind::Map;
    else if (kind == "unmap")
        r.kind = Kind::Unmap;
    else if (kind == "inval")
        r.kind = Kind::Invalidate;
    else if (kind == "dma")
        r.kind = Kind::Dma;
    else if (kind == "fault")
        r.kind = Kind::Fault;
    else
        return fail(why, "unknown record kind " + quoted(kind) +
                             " (expected map, unmap, inval, dma or fault)");

    const std::string_view who = tok.next();
    if (r.kind == Kind::Invalidate) {
        if (!parse_scope(who, r.scope.kind)) {
            std::string names;
            for (unsigned i = 0; i <= unsigned(SK::Wait); ++i)
                names += std::string(i ? ", " : "") + to_string(SK(i));
            return fail(why,
                        "unknown invalidation scope " + quoted(who) + " (expected " + names + ")");
        }
    } else if (!parse_requester(who, r.req)) {
        return fail(why, "expected requester BB:DD.F or BB:DD.F/<hex pasid>, got " + quoted(who));
    }

    const uint32_t allow = allowed(r.kind);
    uint32_t seen = 0;
    for (std::string_view field = tok.next(); !field.empty(); field = tok.next()) {
        const size_t eq = field.find('=');
        if (eq == std::string_view::npos)
            return fail(why, "expected key=value, got " + quoted(field));
        const std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
        const int f = field_index(key);
        if (f < 0 || !(allow & (1u << f)))
            return fail(why, "unknown field " + quoted(key) + " in " + kind_name(r.kind) +
                                 " record (expected " + field_list(allow) + ")");
        if (seen & (1u << f)) return fail(why, "duplicate field " + quoted(key));
        seen |= 1u << f;
        if (!set_field(unsigned(f), value, r))
            return fail(why, std::string("expected ") + expected(unsigned(f), r.kind) + ", got " +
                                 quoted(field));
    }

    const uint32_t missing = required(r.kind, r.scope.kind) & ~seen;
    for (unsigned f = 0; f < kNumFields; ++f)
        if (missing & (1u << f)) return fail(why, std::string("expected ") + expected(f, r.kind));
    if (bool(seen & kAddr) != bool(seen & kOrder))
        return fail(why, seen & kAddr ? "expected order=<0..52> with addr="
                                      : "expected addr=<hex> with order=");
    return true;
}

}  // namespace iommusim::trace::detail
