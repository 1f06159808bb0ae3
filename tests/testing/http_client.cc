#include "testing/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace dist_counter {
namespace test {

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::string Trim(const std::string& s) {
  const char* kSpace = " \t\r\n";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

// Collects "Name: value" lines; a status line starts a new header block
// (so only the final reply's headers remain after a 100 Continue).
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();
    return size * count;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * count;
  std::string name = Trim(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const std::string value = Trim(line.substr(colon + 1));
  auto it = headers->find(name);
  if (it == headers->end()) {
    (*headers)[name] = value;
  } else {
    it->second += ", " + value;
  }
  return size * count;
}

}  // namespace

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(const HttpClientOptions& options) : options_(options) {
  GlobalInit();
}

HttpClient::~HttpClient() {
  if (handle_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(handle_));
}

HttpResponse HttpClient::Request(
    const std::string& method, const std::string& url, const std::string& body,
    const std::map<std::string, std::string>& headers) {
  return Request(method, url, body, headers, options_.timeout_ms);
}

HttpResponse HttpClient::Request(
    const std::string& method, const std::string& url, const std::string& body,
    const std::map<std::string, std::string>& headers, int timeout_ms) {
  HttpResponse response;
  CURL* curl = static_cast<CURL*>(handle_);
  if (curl == nullptr) {
    curl = curl_easy_init();
    if (curl == nullptr) {
      response.error = "curl_easy_init failed";
      return response;
    }
  } else {
    curl_easy_reset(curl);  // keeps the connection cache
  }

  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(timeout_ms));
  curl_easy_setopt(
      curl, CURLOPT_HTTP_VERSION,
      options_.http10 ? CURL_HTTP_VERSION_1_0 : CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);

  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    if (method != "POST") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (method == "POST" || !body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(body.size()));
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    }
  }
  if (!body.empty() && method == "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "GET");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  }

  // No "Expect: 100-continue" round trip, and no form content type unless
  // the caller asks for one.
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  bool content_type_given = false;
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower == "content-type") content_type_given = true;
    const std::string line = value.empty() ? name + ":" : name + ": " + value;
    list = curl_slist_append(list, line.c_str());
  }
  if (!content_type_given) list = curl_slist_append(list, "Content-Type:");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

  const CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    response.error = error[0] != '\0' ? error : curl_easy_strerror(code);
    response.status = 0;
    response.connect_failed = code == CURLE_COULDNT_CONNECT;
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  }
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &response.num_connects);
  // The slist and error buffer die here; detach them from a kept handle.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(list);

  if (options_.reuse_connection) {
    handle_ = curl;
  } else {
    curl_easy_cleanup(curl);
  }
  return response;
}

HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& body,
                         const std::map<std::string, std::string>& headers,
                         int timeout_ms) {
  HttpClientOptions options;
  options.timeout_ms = timeout_ms;
  HttpClient client(options);
  return client.Request(method, url, body, headers);
}

}  // namespace test
}  // namespace dist_counter
