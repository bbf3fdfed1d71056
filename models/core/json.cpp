#include "json.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "quote.h"

namespace iommusim {

Json json_string(const std::string& s, std::string_view what) {
    Json j = s;
    // ASCII is UTF-8: only strings with other bytes need the library's check.
    bool ascii = true;
    for (char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return j;
    try {
        (void)j.dump(-1, ' ', false, Json::error_handler_t::strict);
    } catch (const Json::type_error&) {
        // The library's message names the byte after the bad sequence; the quoted string
        // shows the bad bytes themselves (\xNN).
        throw std::invalid_argument(
            fmt::format("{} {} is not valid UTF-8 and cannot be written to JSON", what, quote(s)));
    }
    return j;
}

Json json_number(double v, const std::string& what) {
    if (!std::isfinite(v))
        throw std::invalid_argument(fmt::format("{} is {}, which JSON cannot represent", what, v));
    return Json(v);
}

std::string json_dump(const Json& j, int indent) {
    return j.dump(indent, ' ', false, Json::error_handler_t::strict);
}

Json json_parse(const std::string& text, const std::string& what) {
    try {
        return Json::parse(text);
    } catch (const Json::parse_error& e) {
        throw std::invalid_argument(
            fmt::format("{} {} is not JSON ({})", what, quote(text), e.what()));
    }
}

}  // namespace iommusim
