#include "util/json.h"

#include <rapidjson/error/en.h>

#include <string>

namespace dist_counter {

Status CheckJsonDepth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return Status::InvalidArgument("JSON nested more than " +
                                         std::to_string(max_depth) +
                                         " levels deep");
        }
        break;
      case ']':
      case '}':
        --depth;  // unbalanced text is the parser's to refuse
        break;
      default:
        break;
    }
  }
  return Status::OK();
}

Status ParseJson(std::string_view text, int max_depth,
                 rapidjson::Document* doc) {
  Status s = CheckJsonDepth(text, max_depth);
  if (!s.ok()) return s;
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  doc->Parse<kFlags>(text.data(), text.size());
  if (doc->HasParseError()) {
    return Status::InvalidArgument(
        std::string("bad JSON at offset ") +
        std::to_string(doc->GetErrorOffset()) + ": " +
        rapidjson::GetParseError_En(doc->GetParseError()));
  }
  return Status::OK();
}

}  // namespace dist_counter
