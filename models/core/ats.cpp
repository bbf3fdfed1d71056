#include "ats.h"

namespace iommusim::ats {

const char* to_string(ResponseCode c) {
    switch (c) {
        case ResponseCode::Success: return "success";
        case ResponseCode::InvalidRequest: return "invalid-request";
        case ResponseCode::ResponseFailure: return "response-failure";
    }
    return "reserved";
}

}  // namespace iommusim::ats
