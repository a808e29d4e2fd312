// SPDX-License-Identifier: MIT
// Layer 3a: Coro<T>, the return type of an `async def`.
//
// A Coro is lazy: calling the coroutine function only allocates its frame. It starts when it is
// awaited (`co_await f()`, Python's `await f()`) or wrapped in a Task, and when it finishes it
// resumes its awaiter directly by symmetric transfer: no trip through the loop and no stack
// growth, however deep the await chain. Exceptions propagate to the awaiter.
//
//   asyncio::Coro<int> add(int a, int b) { co_await asyncio::sleep(0.1); co_return a + b; }
//   asyncio::Coro<void> caller() { int s = co_await add(1, 2); }
//
// Inside a Coro, `co_await` accepts this library's awaitables (Coro, Future, Task, sleep, ...).
// A foreign awaitable is rejected at compile time: it could resume the coroutine from anywhere,
// behind the loop's back. Bridge such code with a Future (see docs/overview.md).
#pragma once
#pragma GCC visibility push(default)  // the public API leaves libasyncio.so: cmake/shared.cmake

#include <coroutine>
#include <exception>
#include <functional>
#include "asyncio/source_location.hpp"
#include <type_traits>
#include <utility>
#include <variant>

#include "asyncio/errors.hpp"

namespace asyncio {

template <class T = void>
class Coro;

namespace detail {

/// Awaitables of this library carry this marker; await_transform accepts nothing else.
template <class A>
concept LoopAwaitable = requires { typename std::remove_cvref_t<A>::is_asyncio_awaitable; };

/// Reports a Coro destroyed without ever being awaited (Python's "coroutine ... was never
/// awaited" RuntimeWarning) through asyncio::log, naming the coroutine function and its source
/// location (`created`: what the promise recorded when the frame was made).
void report_never_awaited(const SourceLocation& created) noexcept;

class CoroPromiseBase;
/// The promise of the coroutine that executed the latest co_await on this thread. When a task
/// parks, this is its innermost coroutine: diagnostics read the resume point from it.
extern constinit thread_local CoroPromiseBase* t_last_await;

/// Frame allocation: coroutine frames come from per-thread size-class free lists, so a steady
/// stream of short coroutines recycles memory instead of calling malloc each time.
void* allocate_frame(std::size_t size);
void free_frame(void* p, std::size_t size) noexcept;

/// Forwards to an awaiter that stays where it is (the temporary in the coroutine frame).
/// g++ 12 copies whatever await_transform returns; handing it this 8-byte reference instead of the
/// awaiter keeps one awaiter per co_await in the frame, and awaiters need not be movable.
template <class A>
class AwaitRef {
 public:
  explicit AwaitRef(A& a) noexcept : a_(&a) {}
  decltype(auto) await_ready() { return a_->await_ready(); }
  template <class P>
  decltype(auto) await_suspend(std::coroutine_handle<P> h) {
    return a_->await_suspend(h);
  }
  decltype(auto) await_resume() { return a_->await_resume(); }

 private:
  A* a_;
};

template <class A>
concept HasMemberCoAwait = requires(A&& a) { std::forward<A>(a).operator co_await(); };

template <class A>
struct AwaiterOf {
  using type = A;
};
template <class A>
  requires HasMemberCoAwait<A>
struct AwaiterOf<A> {
  using type = decltype(std::declval<A>().operator co_await());
};
/// What `co_await a` (with `a` of type A) yields, for any awaitable of this library.
template <class A>
using await_result_t = decltype(std::declval<typename AwaiterOf<A>::type&>().await_resume());

class CoroPromiseBase {
 public:
  /// Who awaits this coroutine; null for the top coroutine of a Task (which then returns to the
  /// task's step when it finishes).
  std::coroutine_handle<> continuation;
  /// The awaiting Coro's promise, for await-graph walks; null at the top.
  CoroPromiseBase* parent = nullptr;
  /// Where this coroutine last awaited (file, line, function): the "resume point" that diagnostics
  /// report. Until its first co_await it names the coroutine function itself (see CoroPromise's
  /// constructor), which is what the never-awaited report prints.
  SourceLocation where;

  explicit CoroPromiseBase(SourceLocation created) noexcept : where(created) {}

  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
      std::coroutine_handle<> next = h.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  template <class A>
  decltype(auto) await_transform(A&& awaitable, SourceLocation loc = SourceLocation::current()) {
    static_assert(LoopAwaitable<A>,
                  "co_await inside an asyncio::Coro takes asyncio awaitables only (Coro, Future, "
                  "Task, sleep, ...); wrap other asynchronous APIs in an asyncio::Future");
    where = loc;
    t_last_await = this;
    if constexpr (HasMemberCoAwait<A>)
      return std::forward<A>(awaitable).operator co_await();  // a small awaiter by value
    else
      return AwaitRef<std::remove_reference_t<A>>(awaitable);
  }
};

template <class T>
class CoroPromise : public CoroPromiseBase {
 public:
  /// Made by the compiler when the coroutine function is called. The default argument is
  /// evaluated inside that function, so it records the coroutine's own name and file:line (clang:
  /// the line of its declaration; g++: of its closing brace) at no run-time cost: three constants
  /// stored in place of the empty ones a default-initialised `where` would hold.
  CoroPromise(SourceLocation created = SourceLocation::current()) noexcept : CoroPromiseBase(created) {}
  Coro<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    result_.template emplace<1>(std::forward<U>(v));
  }
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  /// The value, or the exception rethrown.
  T take() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }
  std::exception_ptr exception() const noexcept {
    return result_.index() == 2 ? std::get<2>(result_) : nullptr;
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class CoroPromise<void> : public CoroPromiseBase {
 public:
  /// As CoroPromise<T>'s: records the coroutine function's name and location.
  CoroPromise(SourceLocation created = SourceLocation::current()) noexcept : CoroPromiseBase(created) {}
  Coro<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  void take() {
    if (exception_) std::rethrow_exception(exception_);
  }
  std::exception_ptr exception() const noexcept { return exception_; }

 private:
  std::exception_ptr exception_;
};

}  // namespace detail

/// A lazy coroutine producing T. Move-only; awaited once.
///   asyncio::Coro<std::string> greet() { co_return "hi"; }
template <class T>
class [[nodiscard]] Coro {
  static_assert(!std::is_reference_v<T>, "Coro<T&> is not supported; return a value or a pointer");

 public:
  /// The compiler's hook: the promise behind every `Coro<T>` coroutine.
  using promise_type = detail::CoroPromise<T>;
  /// The coroutine handle this Coro owns.
  using handle_type = std::coroutine_handle<promise_type>;
  /// What `co_await` on this Coro returns.
  using value_type = T;
  /// Marks this library's awaitables: only they may be awaited inside a Coro.
  using is_asyncio_awaitable = void;

  Coro() noexcept = default;
  /// Takes ownership of a coroutine frame (made by the promise; not for user code).
  explicit Coro(handle_type h) noexcept : h_(h) {}
  /// Moves the frame; `o` becomes empty and will not report "never awaited".
  Coro(Coro&& o) noexcept : h_(std::exchange(o.h_, {})), awaited_(o.awaited_) {}
  /// Destroys the frame held (reporting it if never awaited), then takes `o`'s.
  Coro& operator=(Coro&& o) noexcept {
    if (this != &o) {
      destroy();
      h_ = std::exchange(o.h_, {});
      awaited_ = o.awaited_;
    }
    return *this;
  }
  ~Coro() { destroy(); }

  /// True if this object holds a coroutine (not moved from, not released).
  explicit operator bool() const noexcept { return bool(h_); }

  /// What `co_await coro` uses: starts the child and resumes the caller when it finishes.
  class Awaiter {
   public:
    /// Wraps the child's handle.
    explicit Awaiter(handle_type h) noexcept : h_(h) {}
    /// Never ready: awaiting always transfers into the child.
    bool await_ready() const noexcept { return false; }
    /// Records the caller as the child's continuation and transfers into the child.
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
      h_.promise().continuation = caller;
      if constexpr (std::is_base_of_v<detail::CoroPromiseBase, P>) h_.promise().parent = &caller.promise();
      return h_;  // symmetric transfer into the child
    }
    /// The child's result, or its exception rethrown.
    T await_resume() { return h_.promise().take(); }

   private:
    handle_type h_;
  };

  /// Starts the coroutine and waits for it. Awaiting the same Coro twice throws
  /// InvalidStateError (Python: "cannot reuse already awaited coroutine").
  Awaiter operator co_await() & { return Awaiter(claim()); }
  /// As the lvalue form: `co_await make_coro()`.
  Awaiter operator co_await() && { return Awaiter(claim()); }

  /// Hands the frame to a new owner (a Task). The Coro becomes empty.
  handle_type release() {
    if (!h_) throw InvalidStateError("empty Coro (moved from or released)");
    if (awaited_) throw InvalidStateError("cannot reuse already awaited coroutine");
    awaited_ = true;
    return std::exchange(h_, {});
  }

 private:
  handle_type claim() {
    if (!h_) throw InvalidStateError("cannot await an empty Coro (moved from or released)");
    if (awaited_) throw InvalidStateError("cannot reuse already awaited coroutine");
    awaited_ = true;
    return h_;
  }
  void destroy() noexcept {
    if (!h_) return;
    if (!awaited_) detail::report_never_awaited(h_.promise().where);
    h_.destroy();
    h_ = {};
  }

  handle_type h_;
  bool awaited_ = false;
};

namespace detail {

template <class T>
inline constexpr bool is_coro_v = false;
template <class T>
inline constexpr bool is_coro_v<Coro<T>> = true;

/// A callable whose call with `Args` (moved in) gives a Coro: a coroutine lambda, a coroutine
/// function.
template <class F, class... Args>
concept CoroutineCallable =
    std::is_invocable_v<F&, Args&&...> && is_coro_v<std::remove_cvref_t<std::invoke_result_t<F&, Args&&...>>>;

/// Awaits any awaitable of this library inside a Coro that owns it (moved into the frame), so
/// that functions taking Coro, Future or Task take `sleep(...)`, `event.wait()`, ... as well.
template <class A, class T = std::remove_cvref_t<await_result_t<A>>>
Coro<T> await_in_coro(A aw) {
  if constexpr (std::is_void_v<T>)
    co_await aw;
  else
    co_return co_await aw;
}

/// make_coro's coroutine: `f` and `a` are its parameters, so they live in its frame. The
/// arguments are moved into the one call (as std::thread does).
template <class F, class... Args>
std::invoke_result_t<F&, Args&&...> call_owned(F f, Args... a) {
  using T = typename std::invoke_result_t<F&, Args&&...>::value_type;
  if constexpr (std::is_void_v<T>)
    co_await std::invoke(f, std::move(a)...);
  else
    co_return co_await std::invoke(f, std::move(a)...);
}

template <class T>
Coro<T> CoroPromise<T>::get_return_object() noexcept {
  return Coro<T>(std::coroutine_handle<CoroPromise<T>>::from_promise(*this));
}
inline Coro<void> CoroPromise<void>::get_return_object() noexcept {
  return Coro<void>(std::coroutine_handle<CoroPromise<void>>::from_promise(*this));
}
}  // namespace detail

/// Calls `fn(args...)` inside a coroutine that owns `fn` and the arguments: the safe way to start
/// a capturing coroutine lambda later. A lambda's captures live in the lambda object, not in the
/// frame of the coroutine it starts; `create_task([x]() -> Coro<void> {...}())` keeps a pointer
/// to a temporary that dies at the `;`. `make_coro` moves the lambda into a frame that lives
/// until the coroutine ends:
///
///   auto t = asyncio::create_task(asyncio::make_coro([id]() -> asyncio::Coro<int> { co_return id; }));
///   auto u = asyncio::create_task([id]() -> asyncio::Coro<int> { co_return id; });   // the same
///
/// (create_task, TaskGroup::create_task and run_coroutine_threadsafe take the callable itself and
/// do this.)
template <class F, class... Args>
  requires detail::CoroutineCallable<std::decay_t<F>, std::decay_t<Args>...>
std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&&...> make_coro(F&& fn, Args&&... args) {
  return detail::call_owned<std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace asyncio
#pragma GCC visibility pop
