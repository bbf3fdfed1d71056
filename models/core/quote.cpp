#include "quote.h"

namespace iommusim {

namespace {

void append_escaped(std::string& out, std::string_view s, size_t max) {
    static const char kHex[] = "0123456789abcdef";
    const size_t n = s.size() < max ? s.size() : max;
    for (size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '\'': out += "\\'"; continue;
            case '\\': out += "\\\\"; continue;
            case '\t': out += "\\t"; continue;
            case '\r': out += "\\r"; continue;
            case '\n': out += "\\n"; continue;
            default: break;
        }
        if (c >= 0x20 && c < 0x7f) {
            out += char(c);
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    if (s.size() > max) out += "\u2026";
}

}  // namespace

std::string escape(std::string_view s, size_t max) {
    std::string out;
    append_escaped(out, s, max);
    return out;
}

std::string quote(std::string_view s, size_t max) {
    std::string out = "'";
    append_escaped(out, s, max);
    out += "'";
    if (s.size() > max) out += " (" + std::to_string(s.size()) + " bytes)";
    return out;
}

}  // namespace iommusim
