#include "util/status.h"

#include <gtest/gtest.h>

namespace dist_counter {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(s.message().empty());
  EXPECT_TRUE(Status::OK().ok());
}

TEST(StatusTest, EachFactorySetsOnlyItsOwnPredicate) {
  struct Case {
    Status status;
    Status::Code code;
    const char* name;
  };
  const Case cases[] = {
      {Status::NotFound("m"), Status::Code::kNotFound, "NotFound"},
      {Status::InvalidArgument("m"), Status::Code::kInvalidArgument,
       "InvalidArgument"},
      {Status::Corruption("m"), Status::Code::kCorruption, "Corruption"},
      {Status::IOError("m"), Status::Code::kIOError, "IOError"},
      {Status::Unavailable("m"), Status::Code::kUnavailable, "Unavailable"},
      {Status::Busy("m"), Status::Code::kBusy, "Busy"},
      {Status::StorageUnavailable("m"), Status::Code::kStorageUnavailable,
       "StorageUnavailable"},
      {Status::ResourceExhausted("m"), Status::Code::kResourceExhausted,
       "ResourceExhausted"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Status& s = c.status;
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), c.code);
    EXPECT_EQ(s.IsNotFound(), c.code == Status::Code::kNotFound);
    EXPECT_EQ(s.IsInvalidArgument(), c.code == Status::Code::kInvalidArgument);
    EXPECT_EQ(s.IsCorruption(), c.code == Status::Code::kCorruption);
    EXPECT_EQ(s.IsIOError(), c.code == Status::Code::kIOError);
    EXPECT_EQ(s.IsUnavailable(), c.code == Status::Code::kUnavailable);
    EXPECT_EQ(s.IsBusy(), c.code == Status::Code::kBusy);
    EXPECT_EQ(s.IsStorageUnavailable(),
              c.code == Status::Code::kStorageUnavailable);
    EXPECT_EQ(s.IsResourceExhausted(),
              c.code == Status::Code::kResourceExhausted);
    EXPECT_EQ(s.message(), "m");
    EXPECT_EQ(s.ToString(), std::string(c.name) + ": m");
  }
}

TEST(StatusTest, MessageKeepsEveryByte) {
  const std::string text("a\0b: c", 6);
  Status s = Status::Corruption(text);
  EXPECT_EQ(s.message(), text);
  EXPECT_EQ(s.ToString(), "Corruption: " + text);
}

TEST(StatusTest, CopiesAreIndependent) {
  Status a = Status::IOError("disk");
  Status b = a;
  a = Status::OK();
  EXPECT_TRUE(a.ok());
  EXPECT_TRUE(b.IsIOError());
  EXPECT_EQ(b.message(), "disk");
}

}  // namespace
}  // namespace dist_counter
