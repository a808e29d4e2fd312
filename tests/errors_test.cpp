// SPDX-License-Identifier: MIT
// errors.hpp: ExceptionGroup's split() and subgroup() (Python's except* building blocks).
#include <asyncio/errors.hpp>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

using asyncio::ExceptionGroup;

std::exception_ptr ptr_of(auto e) { return std::make_exception_ptr(e); }

/// The what() of each leaf, depth first.
void leaves(const ExceptionGroup& g, std::vector<std::string>& out) {
  for (const auto& e : g.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const ExceptionGroup& nested) {
      leaves(nested, out);
    } catch (const std::exception& x) {
      out.push_back(x.what());
    }
  }
}
std::vector<std::string> leaves(const ExceptionGroup& g) {
  std::vector<std::string> out;
  leaves(g, out);
  return out;
}

ExceptionGroup mixed() {
  std::vector<std::exception_ptr> inner{ptr_of(asyncio::TimeoutError("t2")), ptr_of(std::logic_error("l2"))};
  std::vector<std::exception_ptr> outer{ptr_of(asyncio::TimeoutError("t1")), ptr_of(std::runtime_error("r1")),
                                        ptr_of(ExceptionGroup("inner", inner))};
  return ExceptionGroup("outer", outer);
}

TEST(ExceptionGroup, SplitSeparatesMatchesFromTheRestKeepingNesting) {
  auto [match, rest] = mixed().split<asyncio::TimeoutError>();
  ASSERT_TRUE(match && rest);
  EXPECT_EQ(match->message(), "outer");
  EXPECT_EQ(rest->message(), "outer");
  EXPECT_EQ(leaves(*match), (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(leaves(*rest), (std::vector<std::string>{"r1", "l2"}));
  // The nested group stays a nested group, with its own message, on both sides.
  ASSERT_EQ(match->exceptions().size(), 2u);
  try {
    std::rethrow_exception(match->exceptions()[1]);
  } catch (const ExceptionGroup& g) {
    EXPECT_EQ(g.message(), "inner");
  }
}

TEST(ExceptionGroup, SubgroupWithNoMatchIsEmpty) {
  EXPECT_FALSE(mixed().subgroup<std::out_of_range>());
  auto [match, rest] = mixed().split<std::out_of_range>();
  EXPECT_FALSE(match);
  ASSERT_TRUE(rest);
  EXPECT_EQ(leaves(*rest).size(), 4u);
}

TEST(ExceptionGroup, SubgroupOfABaseTypeTakesDerivedExceptions) {
  std::vector<std::exception_ptr> es{ptr_of(std::invalid_argument("i")), ptr_of(std::runtime_error("r")),
                                     ptr_of(std::out_of_range("o"))};
  auto g = ExceptionGroup("g", es).subgroup<std::logic_error>();
  ASSERT_TRUE(g);
  EXPECT_EQ(leaves(*g), (std::vector<std::string>{"i", "o"}));
}

TEST(ExceptionGroup, ANestedGroupThatIsItselfOfTheTypeIsTakenWhole) {
  // An ExceptionGroup is a std::runtime_error (through asyncio::Error): the nested one matches
  // whole, logic_error inside it included, as a nested group matching Python's condition does.
  auto g = mixed().subgroup<std::runtime_error>();
  ASSERT_TRUE(g);
  EXPECT_EQ(leaves(*g), (std::vector<std::string>{"t1", "r1", "t2", "l2"}));
}

TEST(ExceptionGroup, AGroupThatIsItselfOfTheTypeMatchesWhole) {
  auto [match, rest] = mixed().split<asyncio::Error>();
  ASSERT_TRUE(match);
  EXPECT_FALSE(rest);
  EXPECT_EQ(match->exceptions().size(), 3u);
}

// The except* pattern, as documented in errors.hpp.
TEST(ExceptionGroup, ExceptStarPortHandlesOnePartAndRethrowsTheRest) {
  std::vector<std::string> handled;
  try {
    try {
      throw mixed();
    } catch (const ExceptionGroup& eg) {
      auto [timeouts, rest] = eg.split<asyncio::TimeoutError>();
      if (timeouts) handled = leaves(*timeouts);
      if (rest) throw *rest;
    }
    FAIL() << "the rest was not rethrown";
  } catch (const ExceptionGroup& rest) {
    EXPECT_EQ(leaves(rest), (std::vector<std::string>{"r1", "l2"}));
  }
  EXPECT_EQ(handled, (std::vector<std::string>{"t1", "t2"}));
}

}  // namespace
