// The native 1 kHz joint command sender (see joint_sender.h for the contract).
#include "joint_sender.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <new>
#include <vector>

namespace {

struct Row {
  int64_t index = -1;
  double state[EP_STATE] = {};
  double ref[EP_JOINTS] = {};
  int32_t has_ref = 0;
  double width = 0.0;
  uint32_t mask = 0;
  int32_t held = 0;
};

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void sleep_until_s(double t) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - static_cast<double>(ts.tv_sec)) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

bool finite_all(const double* x, int n) {
  for (int i = 0; i < n; ++i)
    if (!isfinite(x[i])) return false;
  return true;
}

}  // namespace

// The queue between the planner (producer) and the tick thread (consumer) is lock-free: the
// planner must never be able to delay a tick (with a mutex, a planner preempted inside a push
// holds the tick thread up for as long as its core is busy elsewhere - milliseconds on a kernel
// without full preemption). Each ring slot carries an atomic tag, index * 4 + state, and one CAS
// decides who owns index i: the planner (FREE -> PRODUCED after writing the row) or the tick
// thread (FREE -> HELD when nothing was there at i's slot). Exactly one wins; a push that loses
// reports "held", and the planner takes the held row over from the history.
enum SlotState : int64_t { kFree = 0, kProduced = 1, kHeld = 2 };

struct EpJointSender {
  EpLimiterParams params;
  uint32_t flag_bits[EP_LIMITER_BITS];
  int64_t max_ticks = 0;
  double* q_c = nullptr;
  double* widths = nullptr;
  uint32_t* masks = nullptr;
  double* lateness = nullptr;
  uint8_t* held = nullptr;
  int64_t capacity = 0;
  std::vector<Row> rows;                        // written by the planner before its CAS
  std::unique_ptr<std::atomic<int64_t>[]> tags;  // index * 4 + SlotState, per slot
  std::vector<Row> history;                      // sent rows by index % capacity (tick thread writes)
  Row last;                                      // the last row sent (tick thread only)
  int64_t next_push = 0;                         // planner only
  std::atomic<int64_t> sent{0};
  std::atomic<int32_t> stop{0}, finish{0}, running{0};
  int32_t started = 0;
  double t0 = 0.0, spin_s = 0.0;
  pthread_t thread;

  uint32_t mask_of(int32_t bits) const {
    uint32_t mask = 0;
    for (int i = 0; i < EP_LIMITER_BITS; ++i)
      if (bits & (1 << i)) mask |= flag_bits[i];
    return mask;
  }

  // The row for slot `index`: the planner's, or a hold tick toward the last reference; false when
  // the planner finished and nothing is left. Never waits on the planner.
  bool next_row(int64_t index, Row* row) {
    std::atomic<int64_t>& tag = tags[index % capacity];
    int64_t seen = tag.load(std::memory_order_acquire);
    bool produced = seen == index * 4 + kProduced;
    if (!produced) {
      if (finish.load(std::memory_order_acquire)) return false;
      int64_t expected = index * 4 + kFree;
      if (!tag.compare_exchange_strong(expected, index * 4 + kHeld, std::memory_order_acq_rel)) {
        produced = expected == index * 4 + kProduced;  // the planner won the slot meanwhile
      }
    }
    if (produced) {
      *row = rows[index % capacity];
      row->held = 0;
    } else {
      *row = last;
      row->index = index;
      row->held = 1;
      row->mask = mask_of(ep_limit_hold_tick(&params, row->state, row->has_ref ? row->ref : nullptr));
    }
    last = *row;
    history[index % capacity] = *row;
    tag.store((index + capacity) * 4 + kFree, std::memory_order_release);  // the slot's next lap
    return true;
  }

  void serve() {
    for (int64_t index = 0; index < max_ticks; ++index) {
      if (stop.load(std::memory_order_acquire)) break;
      const double slot = t0 + static_cast<double>(index) * params.dt;
      if (slot - spin_s > now_s()) sleep_until_s(slot - spin_s);
      while (now_s() < slot) {
      }
      Row row;
      if (!next_row(index, &row)) break;
      const double late = now_s() - slot;
      memcpy(q_c + index * EP_JOINTS, row.state, sizeof(double) * EP_JOINTS);
      widths[index] = row.width;
      masks[index] = row.mask;
      lateness[index] = late;
      held[index] = static_cast<uint8_t>(row.held);
      sent.store(index + 1, std::memory_order_release);  // logs first, then the count
    }
    running.store(0, std::memory_order_release);
  }

  static void* entry(void* self) {
    static_cast<EpJointSender*>(self)->serve();
    return nullptr;
  }
};

extern "C" {

EP_JS_API int32_t ep_joint_stream_abi(void) { return EP_JOINT_STREAM_ABI; }

EP_JS_API const char* ep_joint_stream_status_name(int32_t status) {
  switch (status) {
    case EP_OK: return "ok";
    case EP_ERR_NULL_POINTER: return "null pointer";
    case EP_ERR_BAD_ARGUMENT: return "bad argument";
    case EP_JS_ERR_PERMISSION: return "real-time priority not permitted";
    case EP_JS_ERR_STATE: return "wrong state";
    case EP_JS_ERR_QUEUE_FULL: return "queue full";
    case EP_JS_ERR_THREAD: return "thread creation failed";
    default: return "unknown status";
  }
}

static bool params_ok(const EpLimiterParams* p) {
  if (!finite_all(&p->caps[0][0], EP_JOINTS * 7) || !(p->dt > 0.0) || !isfinite(p->dt)) return false;
  for (int j = 0; j < EP_JOINTS; ++j)
    if (!(p->caps[j][0] > 0.0 && p->caps[j][1] > 0.0 && p->caps[j][2] > 0.0 && p->caps[j][3] <= p->caps[j][4]))
      return false;
  const double* rest = &p->k_p;
  return finite_all(rest, 8) && p->track_acc_share > 0.0 && p->bound_acc_share > 0.0 && p->track_jerk_share > 0.0;
}

EP_JS_API int32_t ep_limit_hold(const EpLimiterParams* params, double* state, const double* goal, int32_t* bits) {
  if (!params || !state || !bits) return EP_ERR_NULL_POINTER;
  if (!params_ok(params) || !finite_all(state, EP_STATE) || (goal && !finite_all(goal, EP_JOINTS)))
    return EP_ERR_BAD_ARGUMENT;
  *bits = ep_limit_hold_tick(params, state, goal);
  return EP_OK;
}

EP_JS_API int32_t ep_joint_sender_create(const EpLimiterParams* params, const uint32_t* flag_bits,
                                         const double* start_state, double start_width, int64_t max_ticks,
                                         int32_t capacity, double* q_c, double* widths, uint32_t* masks,
                                         double* lateness, uint8_t* held, EpJointSender** out) {
  if (!params || !flag_bits || !start_state || !q_c || !widths || !masks || !lateness || !held || !out)
    return EP_ERR_NULL_POINTER;
  *out = nullptr;
  if (!params_ok(params) || !finite_all(start_state, EP_STATE) || !isfinite(start_width) || max_ticks < 1 ||
      capacity < 2 || capacity > (1 << 20))
    return EP_ERR_BAD_ARGUMENT;
  EpJointSender* s = new (std::nothrow) EpJointSender();
  if (!s) return EP_JS_ERR_THREAD;
  s->params = *params;
  memcpy(s->flag_bits, flag_bits, sizeof(s->flag_bits));
  s->max_ticks = max_ticks;
  s->q_c = q_c;
  s->widths = widths;
  s->masks = masks;
  s->lateness = lateness;
  s->held = held;
  s->capacity = capacity;
  s->rows.resize(static_cast<size_t>(capacity));
  s->history.resize(static_cast<size_t>(capacity));
  s->tags.reset(new (std::nothrow) std::atomic<int64_t>[static_cast<size_t>(capacity)]);
  if (!s->tags) {
    delete s;
    return EP_JS_ERR_THREAD;
  }
  for (int64_t k = 0; k < capacity; ++k) s->tags[k].store(k * 4 + kFree, std::memory_order_relaxed);
  memcpy(s->last.state, start_state, sizeof(s->last.state));
  s->last.width = start_width;
  // Touch the logs now, not page by page in the tick thread.
  memset(q_c, 0, sizeof(double) * EP_JOINTS * static_cast<size_t>(max_ticks));
  memset(widths, 0, sizeof(double) * static_cast<size_t>(max_ticks));
  memset(masks, 0, sizeof(uint32_t) * static_cast<size_t>(max_ticks));
  memset(lateness, 0, sizeof(double) * static_cast<size_t>(max_ticks));
  memset(held, 0, static_cast<size_t>(max_ticks));
  *out = s;
  return EP_OK;
}

EP_JS_API int32_t ep_joint_sender_start(EpJointSender* s, double delay_s, int32_t priority, double spin_s,
                                        int32_t cpu, int32_t mlock, double* t0_s) {
  if (!s || !t0_s) return EP_ERR_NULL_POINTER;
  if (!(delay_s >= 0.0 && delay_s < 10.0) || !(spin_s >= 0.0 && spin_s < 0.01) || priority < 0 || priority > 99 ||
      cpu < -1 || cpu >= CPU_SETSIZE)
    return EP_ERR_BAD_ARGUMENT;
  if (s->started) return EP_JS_ERR_STATE;
  if (mlock && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) return EP_JS_ERR_PERMISSION;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_attr_setaffinity_np(&attr, sizeof(set), &set) != 0) {
      pthread_attr_destroy(&attr);
      return EP_ERR_BAD_ARGUMENT;
    }
  }
  if (priority > 0) {
    sched_param sp;
    memset(&sp, 0, sizeof(sp));
    sp.sched_priority = priority;
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
    pthread_attr_setschedparam(&attr, &sp);
  }
  s->spin_s = spin_s;
  s->t0 = now_s() + delay_s;
  s->running.store(1, std::memory_order_release);
  const int rc = pthread_create(&s->thread, &attr, &EpJointSender::entry, s);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    s->running.store(0, std::memory_order_release);
    if (rc == EPERM) return EP_JS_ERR_PERMISSION;
    return rc == EINVAL ? static_cast<int32_t>(EP_ERR_BAD_ARGUMENT) : static_cast<int32_t>(EP_JS_ERR_THREAD);
  }
  s->started = 1;
  *t0_s = s->t0;
  return EP_OK;
}

EP_JS_API int32_t ep_joint_sender_push(EpJointSender* s, int64_t index, const double* state, const double* ref,
                                       double width, uint32_t mask, int32_t* accepted) {
  if (!s || !state || !accepted) return EP_ERR_NULL_POINTER;
  *accepted = 0;
  if (!finite_all(state, EP_STATE) || (ref && !finite_all(ref, EP_JOINTS)) || !isfinite(width) || index < 0 ||
      index >= s->max_ticks)
    return EP_ERR_BAD_ARGUMENT;
  // Rows come in order: every index skipped since the last push must have gone out held.
  for (int64_t k = s->next_push; k < index; ++k) {
    if (s->tags[k % s->capacity].load(std::memory_order_acquire) < k * 4 + kHeld) return EP_JS_ERR_STATE;
  }
  std::atomic<int64_t>& tag = s->tags[index % s->capacity];
  int64_t seen = tag.load(std::memory_order_acquire);
  if (seen < index * 4) return EP_JS_ERR_QUEUE_FULL;  // the slot's previous lap has not gone out yet
  if (seen != index * 4 + kFree) {                     // held (or already gone out): take it over
    s->next_push = index + 1;
    return EP_OK;
  }
  Row& row = s->rows[index % s->capacity];
  row.index = index;
  memcpy(row.state, state, sizeof(row.state));
  row.has_ref = ref ? 1 : 0;
  if (ref) memcpy(row.ref, ref, sizeof(row.ref));
  row.width = width;
  row.mask = mask;
  int64_t expected = index * 4 + kFree;
  *accepted = tag.compare_exchange_strong(expected, index * 4 + kProduced, std::memory_order_acq_rel) ? 1 : 0;
  if (!*accepted) {  // the tick thread held this index a moment ago: wait until its row is logged
    while (s->sent.load(std::memory_order_acquire) <= index && s->running.load(std::memory_order_acquire)) {
    }
  }
  s->next_push = index + 1;
  return EP_OK;
}

EP_JS_API int64_t ep_joint_sender_sent(const EpJointSender* s) { return s ? s->sent.load(std::memory_order_acquire) : 0; }

EP_JS_API int32_t ep_joint_sender_row(EpJointSender* s, int64_t index, double* state, double* ref, int32_t* has_ref,
                                      double* width, uint32_t* mask, int32_t* held) {
  if (!s || !state || !ref || !has_ref || !width || !mask || !held) return EP_ERR_NULL_POINTER;
  const int64_t before = s->sent.load(std::memory_order_acquire);
  if (index < 0 || index >= before || index < before - s->capacity + 1) return EP_ERR_BAD_ARGUMENT;
  const Row row = s->history[index % s->capacity];
  // The tick thread rewrites this slot a whole capacity of ticks later: if it got there meanwhile,
  // the copy may be torn, so refuse it.
  if (s->sent.load(std::memory_order_acquire) > index + s->capacity - 1) return EP_ERR_BAD_ARGUMENT;
  memcpy(state, row.state, sizeof(row.state));
  memcpy(ref, row.ref, sizeof(row.ref));
  *has_ref = row.has_ref;
  *width = row.width;
  *mask = row.mask;
  *held = row.held;
  return EP_OK;
}

EP_JS_API int32_t ep_joint_sender_finish(EpJointSender* s) {
  if (!s) return EP_ERR_NULL_POINTER;
  s->finish.store(1, std::memory_order_release);
  return EP_OK;
}

EP_JS_API int32_t ep_joint_sender_running(const EpJointSender* s) {
  return s ? s->running.load(std::memory_order_acquire) : 0;
}

EP_JS_API int32_t ep_joint_sender_stop(EpJointSender* s) {
  if (!s) return EP_ERR_NULL_POINTER;
  s->stop.store(1, std::memory_order_release);
  if (s->started == 1) {
    pthread_join(s->thread, nullptr);
    s->started = 2;
  }
  return EP_OK;
}

EP_JS_API void ep_joint_sender_destroy(EpJointSender* s) {
  if (!s) return;
  ep_joint_sender_stop(s);
  delete s;
}

}  // extern "C"
