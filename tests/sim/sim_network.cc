#include "sim_network.h"

#include <string_view>

#include "api/routes.h"
#include "sim_random.h"
#include "util/url.h"

namespace dist_counter {

namespace {

// Splits "path?a=1&b=2" into an ApiRequest's path and decoded query.
Status ParseTarget(const std::string& target, ApiRequest* request) {
  const size_t question = target.find('?');
  request->path = target.substr(0, question);
  if (question == std::string::npos) return Status::OK();
  std::string_view rest(target);
  rest.remove_prefix(question + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view()
                                         : rest.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string name, value;
    Status s = PercentDecode(pair.substr(0, eq), true, &name);
    if (s.ok() && eq != std::string_view::npos) {
      s = PercentDecode(pair.substr(eq + 1), true, &value);
    }
    if (!s.ok()) return s;
    request->query[name] = value;
  }
  return Status::OK();
}

class SimTransport : public PeerTransport {
 public:
  SimTransport(SimNetwork* network, int from)
      : network_(network), from_(from) {}

  Status Get(const std::string& address, const std::string& target,
             int /*timeout_ms*/, size_t /*max_reply_bytes*/,
             PeerReply* reply) override {
    return network_->Deliver(from_, address, target, reply);
  }

 private:
  SimNetwork* const network_;
  const int from_;
};

}  // namespace

SimNetwork::SimNetwork(const SimNetworkOptions& options,
                       const std::vector<std::string>& addresses, Lookup lookup,
                       SimRandom* random, std::vector<std::string>* trace)
    : options_(options),
      addresses_(addresses),
      lookup_(std::move(lookup)),
      random_(random),
      trace_(trace) {}

std::unique_ptr<PeerTransport> SimNetwork::NewTransport(int from) {
  return std::make_unique<SimTransport>(this, from);
}

void SimNetwork::SetCut(int from, int to, bool cut) {
  if (cut) {
    cuts_.insert({from, to});
  } else {
    cuts_.erase({from, to});
  }
}

bool SimNetwork::IsCut(int from, int to) const {
  return cuts_.count({from, to}) != 0;
}

void SimNetwork::HealAll() {
  cuts_.clear();
  faults_ = false;
}

Status SimNetwork::Deliver(int from, const std::string& address,
                           const std::string& target, PeerReply* reply) {
  int to = -1;
  for (size_t i = 0; i < addresses_.size(); ++i) {
    if (addresses_[i] == address) to = static_cast<int>(i);
  }
  const std::string link = "n" + std::to_string(from) + "->" + address + " ";
  if (to < 0) return Status::Unavailable(address + ": no such host");
  if (IsCut(from, to) || IsCut(to, from)) {
    trace_->push_back("  net " + link + "cut");
    return Status::Unavailable(address + ": unreachable");
  }
  Api* api = lookup_(to);
  if (api == nullptr) {
    trace_->push_back("  net " + link + "no answer (down or paused)");
    return Status::Unavailable(address + ": timed out");
  }
  if (faults_ && random_->Percent(options_.drop_request_percent)) {
    trace_->push_back("  net " + link + "request lost");
    return Status::Unavailable(address + ": connection reset");
  }
  ApiRequest request;
  request.method = "GET";
  request.client = "127.0.0.1";
  Status s = ParseTarget(target, &request);
  if (!s.ok()) return Status::Corruption(address + ": " + s.message());
  ApiReply served;
  api->Handle(request, &served);
  auto& last = replies_[{from, to}];
  if (faults_ && last.first == target &&
      random_->Percent(options_.late_reply_percent)) {
    // The reply to the earlier, identical request arrives now.
    trace_->push_back("  net " + link + "late reply");
    *reply = last.second;
    return Status::OK();
  }
  last.first = target;
  last.second.http_status = served.status;
  last.second.body = served.body;
  if (faults_ && random_->Percent(options_.drop_reply_percent)) {
    trace_->push_back("  net " + link + "reply lost");
    return Status::Unavailable(address + ": timed out");
  }
  // No sizes: replies hold random instance and node ids.
  trace_->push_back("  net " + link + std::to_string(served.status));
  reply->http_status = served.status;
  reply->body = std::move(served.body);
  return Status::OK();
}

}  // namespace dist_counter
