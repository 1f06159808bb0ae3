// HttpClient is a small blocking HTTP/1.1 client for tests, built on
// libcurl. It sends one request at a time and returns the status, body and
// headers; a transport failure (refused, timed out, reset) is reported in
// HttpResponse::error instead of a status.
//
// With `reuse_connection`, one curl handle is kept for every request, so a
// keep-alive connection the server leaves open is reused; num_connects of a
// reply tells whether a new TCP connection was opened for it (0: reused).
// Without it, every request gets a fresh handle and connection.
//
// Not thread-safe: use one HttpClient per thread. The free function
// HttpRequest() is safe from any thread.

#ifndef DIST_COUNTER_TESTS_TESTING_HTTP_CLIENT_H_
#define DIST_COUNTER_TESTS_TESTING_HTTP_CLIENT_H_

#include <map>
#include <string>

namespace dist_counter {
namespace test {

struct HttpResponse {
  long status = 0;  // HTTP status; 0 if the transport failed
  std::string body;
  // Header names lowercased; a repeated header's values joined by ", ".
  std::map<std::string, std::string> headers;
  std::string error;      // empty on success, else curl's description
  long num_connects = 0;  // new connections opened for this request
  // No connection could be made (refused, no route): curl's
  // CURLE_COULDNT_CONNECT. Without reuse_connection the request was then
  // not sent at all; with it, curl may have sent it on the kept connection
  // before that one failed and the new one could not be made.
  bool connect_failed = false;

  bool ok() const { return error.empty(); }
  // The value of header `name` (lowercase), or "" if absent.
  std::string Header(const std::string& name) const;
};

struct HttpClientOptions {
  bool reuse_connection = false;  // keep one curl handle (and connection)
  int timeout_ms = 10000;         // whole-request timeout (connect included)
  bool http10 = false;            // send HTTP/1.0 instead of HTTP/1.1
};

class HttpClient {
 public:
  explicit HttpClient(const HttpClientOptions& options = HttpClientOptions());
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  // Sends `method` (GET, POST, PUT, DELETE, ...) to `url` with `body` (sent
  // as is, also when empty for POST) and extra `headers` (name -> value; an
  // empty value removes a header curl would send). Never throws.
  HttpResponse Request(const std::string& method, const std::string& url,
                       const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {});

  // As above with a timeout for this request only.
  HttpResponse Request(const std::string& method, const std::string& url,
                       const std::string& body,
                       const std::map<std::string, std::string>& headers,
                       int timeout_ms);

 private:
  const HttpClientOptions options_;
  void* handle_ = nullptr;  // CURL*, kept when reuse_connection
};

// One request on a fresh connection, with `timeout_ms`.
HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& body = "",
                         const std::map<std::string, std::string>& headers = {},
                         int timeout_ms = 10000);

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_HTTP_CLIENT_H_
