#include "cluster/fake_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dist_counter {
namespace test {

namespace {

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string HttpReply(int status, const std::string& body,
                      const std::string& extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) +
         " Whatever\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

FakeReply JsonReply(const std::string& body) {
  FakeReply reply;
  reply.raw = HttpReply(200, body);
  return reply;
}

FakePeer::FakePeer(Handler handler) : handler_(std::move(handler)) {}

FakePeer::~FakePeer() { Stop(); }

bool FakePeer::Start(uint16_t port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return false;
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  socklen_t len = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void FakePeer::Stop() {
  if (stop_.exchange(true)) return;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

void FakePeer::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      close(fd);
      return;
    }
    fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakePeer::Serve(int fd) {
  std::string buffer;
  char chunk[4096];
  while (!stop_) {
    const size_t end = buffer.find("\r\n\r\n");
    if (end == std::string::npos) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    // "GET <target> HTTP/1.1"; our clients send no request bodies.
    const std::string line = buffer.substr(0, buffer.find("\r\n"));
    buffer.erase(0, end + 4);
    const size_t a = line.find(' ');
    const size_t b = line.rfind(' ');
    const std::string target =
        a != std::string::npos && b > a ? line.substr(a + 1, b - a - 1) : "";
    ++requests_;
    const FakeReply reply = handler_(target);
    bool ok = SendAll(fd, reply.raw.data(), reply.raw.size());
    const std::string filler(64 * 1024, 'x');
    for (size_t sent = 0; ok && sent < reply.filler_bytes && !stop_;) {
      const size_t n = std::min(filler.size(), reply.filler_bytes - sent);
      ok = SendAll(fd, filler.data(), n);
      sent += n;
    }
    if (reply.hang) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_.load(); });
      break;
    }
    if (!ok || reply.close) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  shutdown(fd, SHUT_RDWR);
  close(fd);
  for (auto it = fds_.begin(); it != fds_.end(); ++it) {
    if (*it == fd) {
      fds_.erase(it);
      break;
    }
  }
}

}  // namespace test
}  // namespace dist_counter
