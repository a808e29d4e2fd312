#include "asyncio/errors.hpp"

#include <system_error>
#include <typeinfo>

namespace asyncio {

namespace {
std::string group_what(const std::string& message, std::size_t n) {
  return message + " (" + std::to_string(n) + " sub-exception" + (n == 1 ? "" : "s") + ")";
}
}  // namespace

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : Error(group_what(message, exceptions.size())),
      message_(std::move(message)),
      exceptions_(std::move(exceptions)) {}

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
    return std::string(typeid(x).name()) + ": " + x.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace asyncio
