// Tests of the token check (src/api/auth.h): the constant-time compare, the
// Authorization header's parsing, the token file and the rate-limited log
// of refusals.

#include "api/auth.h"

#include <glog/logging.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "testing/node_process.h"
#include "testing/warning_collector.h"

namespace dist_counter {
namespace {

constexpr char kToken[] = "s3cr3t-t0ken-0123456789abcdef";

// ---- ConstantTimeEquals

TEST(ConstantTimeEqualsTest, EqualStringsAreEqual) {
  EXPECT_TRUE(ConstantTimeEquals("a", "a"));
  EXPECT_TRUE(ConstantTimeEquals(kToken, kToken));
  EXPECT_TRUE(
      ConstantTimeEquals(std::string(4096, 'x'), std::string(4096, 'x')));
}

TEST(ConstantTimeEqualsTest, ADifferenceAtAnyPositionIsSeen) {
  const std::string secret = kToken;
  for (size_t i = 0; i < secret.size(); ++i) {
    for (int flip : {1, 0x20, 0x80}) {
      std::string presented = secret;
      presented[i] = static_cast<char>(presented[i] ^ flip);
      EXPECT_FALSE(ConstantTimeEquals(secret, presented)) << i << " " << flip;
    }
  }
}

TEST(ConstantTimeEqualsTest, PrefixesAndExtensionsAreNotEqual) {
  const std::string secret = kToken;
  for (size_t n = 0; n < secret.size(); ++n) {
    EXPECT_FALSE(ConstantTimeEquals(secret, secret.substr(0, n))) << n;
  }
  EXPECT_FALSE(ConstantTimeEquals(secret, secret + "x"));
  EXPECT_FALSE(ConstantTimeEquals(secret, secret + secret));
  // Longer than the secret, with the secret's first byte repeated: what
  // the compare reads past the secret's end.
  EXPECT_FALSE(ConstantTimeEquals("ab", "abaaaa"));
  EXPECT_FALSE(ConstantTimeEquals("aa", "aaa"));
}

TEST(ConstantTimeEqualsTest, EmptyStringsEqualOnlyEachOther) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals("a", ""));
}

TEST(ConstantTimeEqualsTest, EmbeddedNulBytesCount) {
  EXPECT_TRUE(
      ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(
      ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
  EXPECT_FALSE(ConstantTimeEquals("a", std::string("a\0", 2)));
}

// ---- Authenticator::Check

AuthOptions WithToken(const std::string& token) {
  AuthOptions options;
  options.token = token;
  return options;
}

TEST(IsLoopbackClientTest, LoopbackAddressesAreLoopback) {
  for (const char* ip : {"127.0.0.1", "127.0.0.53", "127.255.255.254",
                         "127.1.2.3", "::1", "[::1]", "0:0:0:0:0:0:0:1",
                         "::ffff:127.0.0.1", "[::ffff:127.9.9.9]"}) {
    EXPECT_TRUE(IsLoopbackClient(ip)) << ip;
  }
}

TEST(IsLoopbackClientTest, OtherAddressesAndNonAddressesAreNot) {
  for (const char* ip :
       {"10.0.0.1", "126.255.255.255", "128.0.0.1", "0.0.0.0", "1.127.0.0",
        "172.17.0.1", "192.168.1.1", "::", "::2", "fe80::1", "2001:db8::1",
        "::ffff:10.0.0.1", "::127.0.0.1", "", "localhost", "127.0.0.1 ",
        "127.0.0", "[127.0.0.1", "::1%lo", "127.0.0.1:7777"}) {
    EXPECT_FALSE(IsLoopbackClient(ip)) << ip;
  }
}

TEST(AuthenticatorTest, TheBearerTokenPasses) {
  Authenticator auth(WithToken(kToken));
  const std::string token = kToken;
  EXPECT_EQ(auth.Check("Bearer " + token), AuthResult::kOk);
  // The scheme is case-insensitive; spaces around the credential go.
  EXPECT_EQ(auth.Check("bearer " + token), AuthResult::kOk);
  EXPECT_EQ(auth.Check("BEARER   " + token + "  "), AuthResult::kOk);
  EXPECT_EQ(auth.Check(" Bearer\t" + token), AuthResult::kOk);
}

TEST(AuthenticatorTest, AMissingHeaderIsMissing) {
  Authenticator auth(WithToken(kToken));
  EXPECT_EQ(auth.Check(""), AuthResult::kMissing);
  EXPECT_EQ(auth.Check("   "), AuthResult::kMissing);
}

TEST(AuthenticatorTest, OtherSchemesAreNotBearer) {
  Authenticator auth(WithToken(kToken));
  const std::string token = kToken;
  EXPECT_EQ(auth.Check("Basic dXNlcjpwYXNz"), AuthResult::kNotBearer);
  EXPECT_EQ(auth.Check(token), AuthResult::kNotBearer);  // no scheme
  EXPECT_EQ(auth.Check("Bearer-" + token), AuthResult::kNotBearer);
  EXPECT_EQ(auth.Check("Token " + token), AuthResult::kNotBearer);
}

TEST(AuthenticatorTest, OtherTokensAreWrong) {
  Authenticator auth(WithToken(kToken));
  const std::string token = kToken;
  EXPECT_EQ(auth.Check("Bearer"), AuthResult::kWrongToken);
  EXPECT_EQ(auth.Check("Bearer "), AuthResult::kWrongToken);
  EXPECT_EQ(auth.Check("Bearer x" + token), AuthResult::kWrongToken);
  EXPECT_EQ(auth.Check("Bearer " + token + "x"), AuthResult::kWrongToken);
  EXPECT_EQ(auth.Check("Bearer " + token.substr(1)), AuthResult::kWrongToken);
  EXPECT_EQ(auth.Check("Bearer " + token + " " + token),
            AuthResult::kWrongToken);
}

// ---- LoadAuthToken

class TokenFileTest : public ::testing::Test {
 protected:
  // Writes `content` to a file of mode `mode` and returns its path.
  std::string Write(const std::string& content, mode_t mode = 0600) {
    const std::string path = dir_.Sub("token" + std::to_string(files_++));
    std::ofstream(path, std::ios::binary) << content;
    chmod(path.c_str(), mode);
    return path;
  }

  test::TempDir dir_;
  int files_ = 0;
};

TEST_F(TokenFileTest, TheTrailingNewlineIsTrimmed) {
  for (const char* content :
       {"abcdefghijklmnopq", "abcdefghijklmnopq\n", "abcdefghijklmnopq\r\n",
        "abcdefghijklmnopq \n\n"}) {
    std::string token = "unchanged";
    std::vector<std::string> warnings;
    Status s = LoadAuthToken(Write(content), &token, &warnings);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(token, "abcdefghijklmnopq");
    EXPECT_TRUE(warnings.empty()) << warnings[0];
  }
}

TEST_F(TokenFileTest, MissingEmptyAndUnusableFilesAreRefused) {
  const std::string missing = dir_.Sub("nope");
  const std::string cases[] = {missing,
                               Write(""),
                               Write("\n\n"),
                               Write(" leading-space-token"),
                               Write("two words in a token"),
                               Write("tab\tinside-a-token-xx"),
                               Write("caf\xc3\xa9-not-ascii-token"),
                               Write(std::string(5000, 'a')),
                               dir_.path()};
  for (const std::string& path : cases) {
    std::string token = "unchanged";
    std::vector<std::string> warnings;
    Status s = LoadAuthToken(path, &token, &warnings);
    EXPECT_TRUE(s.IsInvalidArgument()) << path << ": " << s.ToString();
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
    EXPECT_EQ(token, "unchanged") << path;
  }
}

// In a child process about to exit: if it runs as root, becomes the user
// and group nobody (65534), for whom file modes count as they do for a
// node run as a service user. Returns false if that failed.
bool DropRootInChild() {
  if (geteuid() != 0) return true;
  constexpr uid_t kNobody = 65534;
  if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 ||
      setuid(kNobody) != 0) {
    return false;
  }
  return geteuid() == kNobody;
}

TEST_F(TokenFileTest, AnUnreadableFileIsRefused) {
  // Root reads any file, so the load runs in a child that is not root. It
  // works in the token's directory and names the file relatively, so the
  // only permission it lacks is the file's own (not a parent's above it).
  const std::string path = Write("abcdefghijklmnopq\n", 0200);
  const std::string name = path.substr(dir_.path().size() + 1);
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  EXPECT_EXIT(
      {
        if (chdir(dir_.path().c_str()) != 0 || !DropRootInChild()) {
          std::fprintf(stderr, "cannot drop root: %s", std::strerror(errno));
          _exit(2);
        }
        std::string token = "unchanged";
        std::vector<std::string> warnings;
        Status s = LoadAuthToken(name, &token, &warnings);
        const bool refused =
            s.IsInvalidArgument() &&
            s.message().find("Permission denied") != std::string::npos &&
            token == "unchanged";
        std::fprintf(stderr, "%s", s.ToString().c_str());
        _exit(refused ? 0 : 1);  // no atexit work in a forked child
      },
      ::testing::ExitedWithCode(0), "Permission denied");
}

TEST_F(TokenFileTest, OpenFilesAndShortTokensAreWarnedAbout) {
  std::string token;
  std::vector<std::string> warnings;
  ASSERT_TRUE(
      LoadAuthToken(Write("abcdefghijklmnopq\n", 0644), &token, &warnings)
          .ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("mode 0644"), std::string::npos) << warnings[0];
  EXPECT_EQ(warnings[0].find("abcdefghijklmnopq"), std::string::npos);
  for (mode_t open : {0604, 0620, 0602}) {
    warnings.clear();
    ASSERT_TRUE(
        LoadAuthToken(Write("abcdefghijklmnopq\n", open), &token, &warnings)
            .ok());
    EXPECT_EQ(warnings.size(), 1u) << std::oct << open;
  }
  // A group may read it: that is how a service group or Kubernetes'
  // fsGroup shares it.
  for (mode_t closed : {0600, 0400, 0640, 0440}) {
    warnings.clear();
    ASSERT_TRUE(
        LoadAuthToken(Write("abcdefghijklmnopq\n", closed), &token, &warnings)
            .ok());
    EXPECT_TRUE(warnings.empty()) << std::oct << closed << ": " << warnings[0];
  }

  warnings.clear();
  ASSERT_TRUE(LoadAuthToken(Write("short\n", 0400), &token, &warnings).ok());
  EXPECT_EQ(token, "short");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("fewer than 16 bytes"), std::string::npos)
      << warnings[0];
  EXPECT_EQ(warnings[0].find("short\n"), std::string::npos);
}

// ---- LogRefusal

using test::WarningCollector;

// An Authenticator on a clock the test moves.
class RefusalLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<Authenticator> Make(size_t max_sources = 1024) {
    AuthOptions options = WithToken(kToken);
    options.max_tracked_sources = max_sources;
    options.now_ms = [this] { return now_ms_; };
    return std::make_unique<Authenticator>(options);
  }

  int64_t now_ms_ = 0;
};

TEST_F(RefusalLogTest, OneLinePerSourcePerTenSeconds) {
  auto auth = Make();
  WarningCollector warnings;
  for (int i = 0; i < 5; ++i) {
    auth->LogRefusal("10.0.0.1", "GET /counters", AuthResult::kMissing);
    auth->LogRefusal("10.0.0.2", "GET /metrics", AuthResult::kWrongToken);
    now_ms_ += 1000;
  }
  std::vector<std::string> lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("GET /counters from 10.0.0.1"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("GET /metrics from 10.0.0.2: wrong token"),
            std::string::npos)
      << lines[1];

  now_ms_ = 10000;  // ten seconds after the first lines
  auth->LogRefusal("10.0.0.1", "POST /counter/a", AuthResult::kNotBearer);
  lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find("POST /counter/a from 10.0.0.1"), std::string::npos)
      << lines[2];
  EXPECT_NE(lines[2].find("4 more refusals not logged"), std::string::npos)
      << lines[2];
}

TEST_F(RefusalLogTest, ManySourcesUseBoundedMemory) {
  auto auth = Make(/*max_sources=*/8);
  WarningCollector warnings;
  for (int i = 0; i < 1000; ++i) {
    auth->LogRefusal(
        "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
        "GET /config", AuthResult::kMissing);
    EXPECT_LE(auth->TEST_TrackedSources(), 8u);
  }
  // Eight sources had a line each; the other 992 shared one.
  std::vector<std::string> lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_NE(lines[8].find("beyond the tracked ones"), std::string::npos)
      << lines[8];

  // Once the interval passed, stale sources make room for new ones.
  now_ms_ += 10000;
  auth->LogRefusal("192.168.1.1", "GET /config", AuthResult::kMissing);
  lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_NE(lines[9].find("from 192.168.1.1"), std::string::npos) << lines[9];
  EXPECT_EQ(lines[9].find("beyond the tracked ones"), std::string::npos);
  EXPECT_EQ(auth->TEST_TrackedSources(), 1u);
}

TEST_F(RefusalLogTest, ControlBytesInThePathCannotForgeLogLines) {
  auto auth = Make();
  WarningCollector warnings;
  auth->LogRefusal("", "GET /a\nW1130 forged line", AuthResult::kMissing);
  const std::vector<std::string> lines = warnings.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find('\n'), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("an unknown client"), std::string::npos);
}

}  // namespace
}  // namespace dist_counter
