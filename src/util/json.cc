#include "util/json.h"

#include <rapidjson/error/en.h>

#include <string>
#include <vector>

#include "util/utf8.h"

namespace dist_counter {

namespace {

bool IsUtf8String(const rapidjson::Value& value) {
  return IsValidUtf8(
      std::string_view(value.GetString(), value.GetStringLength()));
}

// Returns true if every string in `root` (names and values) is well-formed
// UTF-8. kParseValidateEncodingFlag checks the raw bytes only: RapidJSON
// 1.1 turns a lone low-surrogate escape ("\udc00") into bytes that are not
// UTF-8. Walks without recursion (`root` is at most max_depth deep anyway).
bool AllStringsAreUtf8(const rapidjson::Value& root) {
  std::vector<const rapidjson::Value*> pending = {&root};
  while (!pending.empty()) {
    const rapidjson::Value* value = pending.back();
    pending.pop_back();
    if (value->IsString() && !IsUtf8String(*value)) return false;
    if (value->IsArray()) {
      for (const auto& item : value->GetArray()) pending.push_back(&item);
    } else if (value->IsObject()) {
      for (const auto& member : value->GetObject()) {
        if (!IsUtf8String(member.name)) return false;
        pending.push_back(&member.value);
      }
    }
  }
  return true;
}

}  // namespace

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

namespace {

template <unsigned kFlags>
Status Parse(std::string_view text, int max_depth, rapidjson::Document* doc) {
  // RapidJSON takes a NUL byte for the end of the text and would ignore
  // what follows; JSON never holds one raw (inside strings it is escaped).
  if (text.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("JSON text holds a NUL byte");
  }
  Status s = CheckJsonDepth(text, max_depth);
  if (!s.ok()) return s;
  doc->Parse<kFlags | rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc->HasParseError()) {
    return Status::InvalidArgument(
        std::string("bad JSON at offset ") +
        std::to_string(doc->GetErrorOffset()) + ": " +
        rapidjson::GetParseError_En(doc->GetParseError()));
  }
  return Status::OK();
}

}  // namespace

Status ParseJson(std::string_view text, int max_depth,
                 rapidjson::Document* doc) {
  Status s = Parse<rapidjson::kParseValidateEncodingFlag>(text, max_depth, doc);
  if (!s.ok()) return s;
  if (!AllStringsAreUtf8(*doc)) {
    return Status::InvalidArgument("JSON string escapes a lone surrogate");
  }
  return Status::OK();
}

Status ParseJsonAnyStrings(std::string_view text, int max_depth,
                           rapidjson::Document* doc) {
  return Parse<rapidjson::kParseNoFlags>(text, max_depth, doc);
}

}  // namespace dist_counter
