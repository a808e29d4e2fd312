// SPDX-License-Identifier: MIT
#include "asyncio/errors.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <system_error>
#include <typeinfo>

namespace asyncio {

namespace {
std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? out.get() : name;
}

std::string group_what(const std::string& message, std::size_t n) {
  return message + " (" + std::to_string(n) + " sub-exception" + (n == 1 ? "" : "s") + ")";
}
}  // namespace

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : Error(group_what(message, exceptions.size())),
      message_(std::move(message)),
      exceptions_(std::move(exceptions)) {}

ExceptionGroupSplit ExceptionGroup::split_if(Condition condition, bool whole) const {
  if (whole) return {*this, std::nullopt};
  std::vector<std::exception_ptr> match, rest;
  for (const auto& e : exceptions_) {
    if (condition(e)) {
      match.push_back(e);
      continue;
    }
    const ExceptionGroup* nested = nullptr;
    try {
      std::rethrow_exception(e);
    } catch (const ExceptionGroup& g) {
      nested = &g;  // the exception object outlives the handler: `e` holds it
    } catch (...) {
    }
    if (!nested) {
      rest.push_back(e);
      continue;
    }
    ExceptionGroupSplit parts = nested->split_if(condition);
    if (parts.match) match.push_back(std::make_exception_ptr(std::move(*parts.match)));
    if (parts.rest) rest.push_back(std::make_exception_ptr(std::move(*parts.rest)));
  }
  ExceptionGroupSplit out;
  if (!match.empty()) out.match.emplace(message_, std::move(match));
  if (!rest.empty()) out.rest.emplace(message_, std::move(rest));
  return out;
}

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool is_cancelled_error(const std::exception_ptr& e, std::string& message) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError& c) {
    message = c.message();
    return true;
  } catch (...) {
    return false;
  }
}

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError& c) {
    return std::string("CancelledError: ") + c.what();
  } catch (const TimeoutError& t) {
    return std::string("TimeoutError: ") + t.what();
  } catch (const std::system_error& s) {
    return std::string("system_error: ") + s.what();
  } catch (const std::exception& x) {
    return demangle(typeid(x).name()) + ": " + x.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace asyncio
