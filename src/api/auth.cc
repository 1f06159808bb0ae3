#include "api/auth.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>

namespace dist_counter {

namespace {

constexpr size_t kMaxTokenFileBytes = 4096;
constexpr size_t kShortTokenBytes = 16;
constexpr size_t kMaxLoggedRequestLine = 200;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// `line` cut to a bounded length, control bytes as '?': a client's path
// must not forge log lines.
std::string Printable(const std::string& line) {
  std::string out = line.substr(0, kMaxLoggedRequestLine);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  if (line.size() > kMaxLoggedRequestLine) out += "...";
  return out;
}

// Reads all of `fd` (at most `max` bytes plus one, to see it is longer)
// into *content. Returns false with errno set on a read error.
bool ReadAll(int fd, size_t max, std::string* content) {
  char buffer[1024];
  while (content->size() <= max) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    content->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

std::string ModeString(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "0%03o",
                static_cast<unsigned>(mode & 0777));
  return text;
}

}  // namespace

bool ConstantTimeEquals(std::string_view secret, std::string_view presented) {
  // The secret's emptiness is configuration, not a secret.
  if (secret.empty()) return presented.empty();
  // Non-zero iff the lengths differ or any byte does.
  size_t diff = secret.size() ^ presented.size();
  const size_t size = secret.size();
  for (size_t i = 0; i < presented.size(); ++i) {
    // All ones while i is inside the secret, else zero: past its end byte 0
    // is read, without a branch (the lengths already differ then).
    const size_t inside = size_t{0} - static_cast<size_t>(i < size);
    const auto s = static_cast<unsigned char>(secret[i & inside]);
    const auto p = static_cast<unsigned char>(presented[i]);
    diff |= static_cast<size_t>(s ^ p);
  }
  return diff == 0;
}

Status LoadAuthToken(const std::string& path, std::string* token,
                     std::vector<std::string>* warnings) {
  const std::string what = "token file " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::InvalidArgument(what + ": " + std::strerror(errno));
  }
  struct stat st {};
  std::string content;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::InvalidArgument(what + ": " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = Status::InvalidArgument(what + ": not a regular file");
  } else if (!ReadAll(fd, kMaxTokenFileBytes, &content)) {
    s = Status::InvalidArgument(what + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!s.ok()) return s;
  if (content.size() > kMaxTokenFileBytes) {
    return Status::InvalidArgument(what + ": larger than " +
                                   std::to_string(kMaxTokenFileBytes) +
                                   " bytes, not a token");
  }
  // Only trailing whitespace goes: leading whitespace is refused below
  // rather than silently changing what a client must send.
  std::string_view value = content;
  while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
  if (value.empty()) {
    return Status::InvalidArgument(what + " is empty: write the token in it");
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const auto byte = static_cast<unsigned char>(value[i]);
    if (byte < 0x21 || byte > 0x7e) {
      return Status::InvalidArgument(
          what + ": byte " + std::to_string(i) +
          " is a space, a control byte or not ASCII; a token must be "
          "visible ASCII (e.g. base64 or hex)");
    }
  }
  // A group may read it (Kubernetes' fsGroup, a service group); nobody
  // else should, and only the owner should write it.
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    warnings->push_back(what + " is open to other users (mode " +
                        ModeString(st.st_mode) +
                        "): chmod 600 it, or 640 for a group that needs it");
  }
  if (value.size() < kShortTokenBytes) {
    warnings->push_back(what + " holds a token of fewer than " +
                        std::to_string(kShortTokenBytes) +
                        " bytes; use a long random one, e.g. head -c 32 "
                        "/dev/urandom | base64");
  }
  token->assign(value.data(), value.size());
  return Status::OK();
}

const char* AuthResultMessage(AuthResult result) {
  switch (result) {
    case AuthResult::kOk:
      return "authorized";
    case AuthResult::kMissing:
      return "this node requires a token: send Authorization: Bearer <token>";
    case AuthResult::kNotBearer:
      return "the Authorization header must be Bearer <token>";
    case AuthResult::kWrongToken:
      return "wrong token";
  }
  return "unauthorized";
}

const char* AuthResultLabel(AuthResult result) {
  switch (result) {
    case AuthResult::kOk:
      return "ok";
    case AuthResult::kMissing:
      return "missing";
    case AuthResult::kNotBearer:
      return "not_bearer";
    case AuthResult::kWrongToken:
      return "wrong_token";
  }
  return "unknown";
}

Authenticator::Authenticator(const AuthOptions& options) : options_(options) {
  CHECK(!options_.token.empty()) << "an Authenticator needs a token";
}

AuthResult Authenticator::Check(std::string_view authorization) const {
  const std::string_view value = Trim(authorization);
  if (value.empty()) return AuthResult::kMissing;
  size_t end = 0;
  while (end < value.size() && !IsSpace(value[end])) ++end;
  if (!EqualsIgnoringCase(value.substr(0, end), "Bearer")) {
    return AuthResult::kNotBearer;
  }
  const std::string_view credential = Trim(value.substr(end));
  return ConstantTimeEquals(options_.token, credential)
             ? AuthResult::kOk
             : AuthResult::kWrongToken;
}

int64_t Authenticator::NowMs() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Authenticator::LogRefusal(const std::string& source,
                               const std::string& request_line,
                               AuthResult result) {
  const int64_t now_ms = NowMs();
  bool overflow = false;
  uint64_t left_out = 0;
  {
    MutexLock lock(&mu_);
    auto it = sources_.find(source);
    const bool known = it != sources_.end();
    if (!known && sources_.size() >= options_.max_tracked_sources) {
      // A source whose last line is older than the interval would be
      // logged at once anyway: forgetting it loses only its left-out count.
      for (auto old = sources_.begin(); old != sources_.end();) {
        const bool stale =
            now_ms - old->second.last_log_ms >= options_.log_interval_ms;
        old = stale ? sources_.erase(old) : std::next(old);
      }
    }
    overflow = !known && sources_.size() >= options_.max_tracked_sources;
    SourceLog* log = overflow ? &overflow_
                     : known  ? &it->second
                              : &sources_[source];
    if (log->logged && now_ms - log->last_log_ms < options_.log_interval_ms) {
      ++log->left_out;
      return;
    }
    left_out = log->left_out;
    log->logged = true;
    log->last_log_ms = now_ms;
    log->left_out = 0;
  }
  LOG(WARNING) << "401: refused " << Printable(request_line) << " from "
               << (source.empty() ? "an unknown client" : source) << ": "
               << AuthResultMessage(result)
               << (overflow ? " (one line per interval for every source "
                              "beyond the tracked ones)"
                            : "")
               << (left_out > 0 ? "; " + std::to_string(left_out) +
                                      " more refusals not logged since the "
                                      "last line"
                                : std::string());
}

size_t Authenticator::TEST_TrackedSources() const {
  MutexLock lock(&mu_);
  return sources_.size();
}

bool IsLoopbackClient(std::string_view ip) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') {
    ip = ip.substr(1, ip.size() - 2);
  }
  const std::string text(ip);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

}  // namespace dist_counter
