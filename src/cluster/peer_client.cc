#include "cluster/peer_client.h"

#include <curl/curl.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "util/crc32.h"
#include "util/decimal.h"
#include "util/peer_address.h"

namespace dist_counter {

namespace {

CURL* Handle(void* curl) { return static_cast<CURL*>(curl); }

int OnProgress(void* abort, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* flag = static_cast<const std::atomic<bool>*>(abort);
  return flag != nullptr && flag->load(std::memory_order_relaxed) ? 1 : 0;
}

std::string BaseUrl(const std::string& address) {
  PeerAddress parsed;
  if (!ParsePeerAddress(address, &parsed).ok()) return "http://" + address;
  return "http://" + parsed.ToString();
}

}  // namespace

bool InitPeerClients() {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

PeerClient::PeerClient(const std::string& address,
                       const PeerClientOptions& options)
    : address_(address), options_(options), url_(BaseUrl(address)) {
  if (options_.transport != nullptr) return;  // it carries the requests
  CURL* curl = curl_easy_init();
  curl_ = curl;
  if (curl == nullptr) return;  // every request then fails with Unavailable
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  // A reply announcing more than the cap is refused before its body comes;
  // OnBody() stops one without a Content-Length at the cap.
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(options_.max_reply_bytes));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &PeerClient::OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &PeerClient::OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA,
                   const_cast<std::atomic<bool>*>(options_.abort));
  curl_easy_setopt(curl, CURLOPT_PRIVATE, this);
  if (!options_.auth_token.empty()) {
    const std::string header = "Authorization: Bearer " + options_.auth_token;
    headers_ = curl_slist_append(nullptr, header.c_str());  // curl copies
    // Without the list every request would go out without the token and be
    // refused with 401, which Finish() reports.
    if (headers_ != nullptr) {
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER,
                       static_cast<curl_slist*>(headers_));
    }
  }
}

PeerClient::~PeerClient() {
  if (curl_ != nullptr) curl_easy_cleanup(Handle(curl_));
  // After the handle, which points at the list.
  curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

size_t PeerClient::OnBody(char* data, size_t size, size_t count, void* self) {
  auto* client = static_cast<PeerClient*>(self);
  const size_t bytes = size * count;
  client->bytes_received_ += bytes;
  if (client->body_.size() + bytes > client->options_.max_reply_bytes) {
    client->body_too_large_ = true;
    return 0;  // curl aborts the transfer with CURLE_WRITE_ERROR
  }
  client->body_.append(data, bytes);
  return bytes;
}

size_t PeerClient::OnHeader(char* data, size_t size, size_t count, void* self) {
  auto* client = static_cast<PeerClient*>(self);
  const size_t bytes = size * count;
  std::string_view line(data, bytes);
  if (line.substr(0, 5) == "HTTP/") {  // a new reply's status line
    client->has_crc_ = false;
    client->crc_unreadable_ = false;
  }
  constexpr std::string_view kName = "x-sfn-crc32:";
  if (line.size() <= kName.size() ||
      strncasecmp(line.data(), kName.data(), kName.size()) != 0) {
    return bytes;
  }
  line.remove_prefix(kName.size());
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    line.remove_prefix(1);
  }
  while (!line.empty() &&
         (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  uint64_t crc = 0;
  if (ParseUint64(line, &crc).ok() && crc <= UINT32_MAX) {
    client->has_crc_ = true;
    client->crc_ = static_cast<uint32_t>(crc);
  } else {
    client->has_crc_ = true;  // present but unreadable: never matches
    client->crc_ = 0;
    client->crc_unreadable_ = true;
  }
  return bytes;
}

void PeerClient::Prepare(const std::string& path_and_query) {
  body_.clear();
  body_too_large_ = false;
  has_crc_ = false;
  crc_unreadable_ = false;
  crc_ = 0;
  if (curl_ == nullptr) return;
  const std::string url = url_ + path_and_query;
  curl_easy_setopt(Handle(curl_), CURLOPT_URL, url.c_str());  // curl copies
}

Status PeerClient::Finish(int code) {
  if (curl_ == nullptr)
    return Status::Unavailable(address_ + ": no curl handle");
  const auto result = static_cast<CURLcode>(code);
  if (result != CURLE_OK) {
    const std::string what = address_ + ": ";
    if (body_too_large_ || result == CURLE_FILESIZE_EXCEEDED) {
      return Status::Corruption(what + "reply larger than " +
                                std::to_string(options_.max_reply_bytes) +
                                " bytes");
    }
    switch (result) {
      case CURLE_OPERATION_TIMEDOUT:
        return Status::Unavailable(what + "timed out");
      case CURLE_ABORTED_BY_CALLBACK:
        return Status::Unavailable(what + "aborted");
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_BAD_CONTENT_ENCODING:
      case CURLE_TOO_MANY_REDIRECTS:
        return Status::Corruption(what + curl_easy_strerror(result));
      default:
        return Status::Unavailable(what + curl_easy_strerror(result));
    }
  }
  long http_status = 0;
  curl_easy_getinfo(Handle(curl_), CURLINFO_RESPONSE_CODE, &http_status);
  Status s = CheckReply(http_status);
  if (!s.ok()) return s;
  if (has_crc_ && (crc_unreadable_ || crc_ != Crc32(body_))) {
    return Status::Corruption(address_ + ": X-SFN-CRC32 does not match");
  }
  return Status::OK();
}

Status PeerClient::CheckReply(long http_status) {
  if (http_status >= 500) {
    return Status::Unavailable(address_ + ": HTTP " +
                               std::to_string(http_status));
  }
  if (http_status == 401) {
    return Status::Unavailable(
        address_ + ": HTTP 401 Unauthorized: " +
        (options_.auth_token.empty()
             ? "the peer requires a token (--auth_token_file) and this node "
               "has none"
             : "the peer refused our token (do both nodes read the same "
               "--auth_token_file?)"));
  }
  if (http_status != 200) {
    return Status::Corruption(address_ + ": unexpected HTTP " +
                              std::to_string(http_status));
  }
  return Status::OK();
}

Status PeerClient::PerformOnTransport(const std::string& path_and_query) {
  body_.clear();
  PeerReply reply;
  Status s =
      options_.transport->Get(address_, path_and_query, options_.timeout_ms,
                              options_.max_reply_bytes, &reply);
  if (!s.ok()) return s;
  bytes_received_ += reply.body.size();
  if (reply.body.size() > options_.max_reply_bytes) {
    return Status::Corruption(address_ + ": reply larger than " +
                              std::to_string(options_.max_reply_bytes) +
                              " bytes");
  }
  body_ = std::move(reply.body);
  return CheckReply(reply.http_status);
}

Status PeerClient::Perform(const std::string& path_and_query) {
  if (options_.transport != nullptr) return PerformOnTransport(path_and_query);
  Prepare(path_and_query);
  if (curl_ == nullptr) return Finish(CURLE_FAILED_INIT);
  return Finish(curl_easy_perform(Handle(curl_)));
}

Status PeerClient::FetchChanges(const ChangesCursor& cursor, size_t limit,
                                ChangesPage* page) {
  if (limit == 0) return Status::InvalidArgument("limit must be positive");
  Status s = Perform(ChangesTarget(cursor, limit, options_.page_bytes));
  if (!s.ok()) return s;
  s = DecodeChangesPage(body_, cursor, limit, options_.limits, page);
  if (!s.ok()) return Status::Corruption(address_ + ": " + s.message());
  return Status::OK();
}

Status PeerClient::FetchCounter(const std::string& name, PeerIdentity* node,
                                PnCounter* state, bool* found) {
  Status s = Perform(CounterTarget(name));
  if (!s.ok()) return s;
  s = DecodeCounterReply(body_, name, options_.limits, node, state, found);
  if (!s.ok()) return Status::Corruption(address_ + ": " + s.message());
  return Status::OK();
}

CounterFanout::CounterFanout(const PeerClientOptions& options)
    : abort_(options.abort),
      options_([&options] {
        PeerClientOptions o = options;
        o.abort = nullptr;
        return o;
      }()),
      multi_(curl_multi_init()) {}

CounterFanout::~CounterFanout() {
  clients_.clear();  // easy handles are never left in the multi handle
  if (multi_ != nullptr) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void CounterFanout::Wakeup() {
  if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void CounterFanout::FetchCounter(const std::vector<std::string>& addresses,
                                 const std::string& name,
                                 std::vector<Result>* results) {
  results->clear();
  results->resize(addresses.size());
  // Drop clients of peers no longer asked about.
  for (auto it = clients_.begin(); it != clients_.end();) {
    bool wanted = false;
    for (const std::string& a : addresses) wanted = wanted || a == it->first;
    it = wanted ? std::next(it) : clients_.erase(it);
  }

  const auto aborted = [this] {
    return abort_ != nullptr && abort_->load(std::memory_order_relaxed);
  };
  if (options_.transport != nullptr) {
    // One peer after the other: a transport call returns when it is done.
    for (size_t i = 0; i < addresses.size(); ++i) {
      Result& r = (*results)[i];
      r.address = addresses[i];
      if (aborted()) {
        r.status = Status::Unavailable(addresses[i] + ": aborted");
        continue;
      }
      auto& client = clients_[addresses[i]];
      if (!client)
        client = std::make_unique<PeerClient>(addresses[i], options_);
      r.status = client->FetchCounter(name, &r.node, &r.state, &r.found);
    }
    return;
  }
  CURLM* multi = static_cast<CURLM*>(multi_);
  std::vector<PeerClient*> added(addresses.size(), nullptr);
  const std::string path = CounterTarget(name);
  for (size_t i = 0; i < addresses.size(); ++i) {
    Result& r = (*results)[i];
    r.address = addresses[i];
    r.status = Status::Unavailable(addresses[i] + ": no answer");
    if (aborted()) {
      r.status = Status::Unavailable(addresses[i] + ": aborted");
      continue;
    }
    auto& client = clients_[addresses[i]];
    if (!client) client = std::make_unique<PeerClient>(addresses[i], options_);
    if (multi == nullptr || client->curl_ == nullptr) continue;
    // An address listed twice is asked once; both entries get the answer.
    bool duplicate = false;
    for (size_t j = 0; j < i; ++j)
      duplicate = duplicate || addresses[j] == addresses[i];
    if (duplicate) continue;
    client->Prepare(path);
    if (curl_multi_add_handle(multi, Handle(client->curl_)) == CURLM_OK) {
      added[i] = client.get();
    }
  }

  // Every transfer has its own total timeout; the deadline only guards
  // against a curl bug keeping us here.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.timeout_ms + 2000);
  std::map<PeerClient*, Status> done;
  int running = 0;
  do {
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      char* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      auto* client = reinterpret_cast<PeerClient*>(priv);
      done[client] = client->Finish(msg->data.result);
    }
    if (running == 0 || aborted()) break;
    curl_multi_poll(multi, nullptr, 0, 50, nullptr);
  } while (std::chrono::steady_clock::now() < deadline && !aborted());

  for (size_t i = 0; i < addresses.size(); ++i) {
    PeerClient* client = added[i];
    if (client == nullptr) continue;
    curl_multi_remove_handle(multi, Handle(client->curl_));
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    PeerClient* client = clients_[addresses[i]].get();
    auto it = done.find(client);
    Result& r = (*results)[i];
    if (it == done.end()) {
      if (aborted()) r.status = Status::Unavailable(addresses[i] + ": aborted");
      continue;
    }
    r.status = it->second;
    if (!r.status.ok()) continue;
    Status s = DecodeCounterReply(client->body_, name, options_.limits, &r.node,
                                  &r.state, &r.found);
    if (!s.ok())
      r.status = Status::Corruption(addresses[i] + ": " + s.message());
  }
}

}  // namespace dist_counter
