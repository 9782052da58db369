// C++ checks of the native sender: the hold tick stops and holds, rows go out in order, a late
// planner gets held ticks it can take over, and bad arguments are errors, not crashes.
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <random>
#include <vector>

#include "../../../kernels/tests/check.h"
#include "joint_sender.h"

static EpLimiterParams panda_like() {
  EpLimiterParams p;
  memset(&p, 0, sizeof(p));
  for (int j = 0; j < EP_JOINTS; ++j) {
    const double caps[7] = {2.0, 10.0, 5000.0, -2.7, 2.7, -2.75, 2.75};
    memcpy(p.caps[j], caps, sizeof(caps));
  }
  p.dt = 1e-3;
  p.k_p = 10.0;
  p.k_v = 40.0;
  p.track_acc_share = 0.5;
  p.track_jerk_share = 0.5;
  p.bound_acc_share = 0.75;
  p.rest_dq = 1e-9;
  p.rest_ddq = 1e-7;
  p.rest_q = 1e-10;
  return p;
}

static void test_hold_tick() {
  EpLimiterParams p = panda_like();
  double state[EP_STATE] = {};
  for (int j = 0; j < EP_JOINTS; ++j) state[EP_JOINTS + j] = 0.5;  // moving at 0.5 rad/s
  int32_t bits = 0;
  int ticks = 0;
  for (; ticks < 5000; ++ticks) {
    CHECK_EQ(ep_limit_hold(&p, state, nullptr, &bits), EP_OK);
    CHECK(bits & EP_BIT_STOPPING);
    bool rest = true;
    for (int j = EP_JOINTS; j < EP_STATE; ++j) rest = rest && state[j] == 0.0;
    if (rest) break;
  }
  CHECK(ticks < 1000);  // 0.5 rad/s stops well within a second at 10 rad/s^2
  const double q_rest = state[0];
  CHECK_EQ(ep_limit_hold(&p, state, nullptr, &bits), EP_OK);
  CHECK_EQ(state[0], q_rest);  // at rest: holds bit for bit
  double goal[EP_JOINTS];
  for (int j = 0; j < EP_JOINTS; ++j) goal[j] = 9.0;  // beyond the bound: clipped
  CHECK_EQ(ep_limit_hold(&p, state, goal, &bits), EP_OK);
  CHECK(bits & EP_BIT_POSITION_CLIPPED);
  double nan_goal[EP_JOINTS] = {NAN, 0, 0, 0, 0, 0, 0};
  CHECK_EQ(ep_limit_hold(&p, state, nan_goal, &bits), EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_limit_hold(nullptr, state, goal, &bits), EP_ERR_NULL_POINTER);
}

struct Logs {
  explicit Logs(int64_t n) : q_c(n * EP_JOINTS), widths(n), masks(n), lateness(n), held(n) {}
  std::vector<double> q_c, widths;
  std::vector<uint32_t> masks;
  std::vector<double> lateness;
  std::vector<uint8_t> held;
};

static EpJointSender* make(Logs& logs, int64_t n, const EpLimiterParams& p) {
  const uint32_t bits[EP_LIMITER_BITS] = {1, 2, 4, 8, 16, 32};
  double start[EP_STATE] = {};
  EpJointSender* s = nullptr;
  CHECK_EQ(ep_joint_sender_create(&p, bits, start, 0.04, n, 64, logs.q_c.data(), logs.widths.data(), logs.masks.data(),
                                  logs.lateness.data(), logs.held.data(), &s),
           EP_OK);
  return s;
}

static void wait_done(EpJointSender* s) {
  for (int i = 0; i < 5000 && ep_joint_sender_running(s); ++i) usleep(1000);
}

static void test_rows_in_order() {
  EpLimiterParams p = panda_like();
  const int64_t n = 200;
  Logs logs(n);
  EpJointSender* s = make(logs, n, p);
  double state[EP_STATE] = {}, ref[EP_JOINTS] = {};
  int32_t accepted = 0;
  for (int64_t i = 0; i < 50; ++i) {  // queued before the start: none is held
    state[0] = 1e-4 * static_cast<double>(i + 1);
    CHECK_EQ(ep_joint_sender_push(s, i, state, ref, 0.04, 0, &accepted), EP_OK);
    CHECK_EQ(accepted, 1);
  }
  CHECK_EQ(ep_joint_sender_push(s, 60, state, ref, 0.04, 0, &accepted), EP_JS_ERR_STATE);  // a gap
  double t0 = 0.0;
  CHECK_EQ(ep_joint_sender_start(s, 0.002, 0, 2e-4, -1, 0, &t0), EP_OK);
  CHECK_EQ(ep_joint_sender_start(s, 0.002, 0, 2e-4, -1, 0, &t0), EP_JS_ERR_STATE);
  CHECK_EQ(ep_joint_sender_finish(s), EP_OK);
  wait_done(s);
  CHECK_EQ(ep_joint_sender_sent(s), 50);
  for (int64_t i = 0; i < 50; ++i) {
    CHECK_EQ(logs.q_c[i * EP_JOINTS], 1e-4 * static_cast<double>(i + 1));
    CHECK_EQ(logs.held[i], 0);
  }
  ep_joint_sender_destroy(s);
}

static void test_late_planner_gets_held_ticks() {
  EpLimiterParams p = panda_like();
  const int64_t n = 100;
  Logs logs(n);
  EpJointSender* s = make(logs, n, p);
  double t0 = 0.0;
  CHECK_EQ(ep_joint_sender_start(s, 0.0, 0, 0.0, 0, 0, &t0), EP_OK);
  while (ep_joint_sender_sent(s) < 5) usleep(500);  // nothing queued: the sender holds
  double state[EP_STATE] = {}, ref[EP_JOINTS] = {};
  int32_t accepted = 1;
  CHECK_EQ(ep_joint_sender_push(s, 0, state, ref, 0.04, 0, &accepted), EP_OK);
  CHECK_EQ(accepted, 0);  // tick 0 went out held: take it over
  double row_state[EP_STATE], row_ref[EP_JOINTS], width = 0.0;
  int32_t has_ref = 1, held = 0;
  uint32_t mask = 0;
  CHECK_EQ(ep_joint_sender_row(s, 0, row_state, row_ref, &has_ref, &width, &mask, &held), EP_OK);
  CHECK_EQ(held, 1);
  CHECK_EQ(has_ref, 0);   // no reference yet: a stop (at rest, so it holds)
  CHECK(mask & 32);       // EP_BIT_STOPPING -> caller's bit 32
  CHECK_EQ(width, 0.04);
  CHECK_EQ(ep_joint_sender_row(s, n + 5, row_state, row_ref, &has_ref, &width, &mask, &held), EP_ERR_BAD_ARGUMENT);
  ep_joint_sender_stop(s);
  CHECK(ep_joint_sender_sent(s) < n);
  CHECK_EQ(ep_joint_sender_running(s), 0);
  ep_joint_sender_destroy(s);
}

// A planner that stalls at random against the 1 kHz thread: every index is decided exactly once,
// either the planner's row (it went out as pushed) or a held tick (and the planner was told so).
static void test_racing_planner_and_ticks_decide_each_index_once() {
  EpLimiterParams p = panda_like();
  const int64_t n = 1500;
  Logs logs(n);
  EpJointSender* s = make(logs, n, p);
  double t0 = 0.0;
  CHECK_EQ(ep_joint_sender_start(s, 0.001, 0, 0.0, -1, 0, &t0), EP_OK);
  std::vector<int> accepted(n, -1);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> pause_us(0, 2500);
  for (int64_t i = 0; i < n; ++i) {
    if (i % 7 == 0) usleep(pause_us(rng));  // a planner that is sometimes late by up to 2.5 slots
    while (i - ep_joint_sender_sent(s) > 40) usleep(200);  // stay within the ring
    double state[EP_STATE] = {};
    state[0] = 1e-3 * static_cast<double>(i + 1);  // a marker: which row went out
    double ref[EP_JOINTS] = {};
    int32_t ok = -1;
    CHECK_EQ(ep_joint_sender_push(s, i, state, ref, 0.04, 0, &ok), EP_OK);
    accepted[i] = ok;
  }
  CHECK_EQ(ep_joint_sender_finish(s), EP_OK);
  wait_done(s);
  CHECK_EQ(ep_joint_sender_sent(s), n);
  int held = 0, mismatched = 0;
  for (int64_t i = 0; i < n; ++i) {
    held += logs.held[i];
    if ((accepted[i] == 1) == (logs.held[i] == 1)) ++mismatched;  // exactly one owner per index
    if (accepted[i] == 1 && logs.q_c[i * EP_JOINTS] != 1e-3 * static_cast<double>(i + 1)) ++mismatched;
  }
  CHECK_EQ(mismatched, 0);
  CHECK(held > 0);  // the stalls did make the tick thread hold
  ep_joint_sender_destroy(s);
}

static void test_bad_create() {
  EpLimiterParams p = panda_like();
  Logs logs(10);
  const uint32_t bits[EP_LIMITER_BITS] = {1, 2, 4, 8, 16, 32};
  double start[EP_STATE] = {};
  EpJointSender* s = nullptr;
  CHECK_EQ(ep_joint_sender_create(&p, bits, start, 0.04, 10, 1, logs.q_c.data(), logs.widths.data(), logs.masks.data(),
                                  logs.lateness.data(), logs.held.data(), &s),
           EP_ERR_BAD_ARGUMENT);  // capacity < 2
  start[3] = INFINITY;
  CHECK_EQ(ep_joint_sender_create(&p, bits, start, 0.04, 10, 8, logs.q_c.data(), logs.widths.data(), logs.masks.data(),
                                  logs.lateness.data(), logs.held.data(), &s),
           EP_ERR_BAD_ARGUMENT);
  start[3] = 0.0;
  p.caps[2][1] = -1.0;
  CHECK_EQ(ep_joint_sender_create(&p, bits, start, 0.04, 10, 8, logs.q_c.data(), logs.widths.data(), logs.masks.data(),
                                  logs.lateness.data(), logs.held.data(), &s),
           EP_ERR_BAD_ARGUMENT);
  CHECK_EQ(ep_joint_sender_create(&p, bits, start, 0.04, 10, 8, nullptr, logs.widths.data(), logs.masks.data(),
                                  logs.lateness.data(), logs.held.data(), &s),
           EP_ERR_NULL_POINTER);
  CHECK(s == nullptr);
  ep_joint_sender_destroy(nullptr);
}

int main() {
  CHECK_EQ(ep_joint_stream_abi(), EP_JOINT_STREAM_ABI);
  test_hold_tick();
  test_rows_in_order();
  test_late_planner_gets_held_ticks();
  test_racing_planner_and_ticks_decide_each_index_once();
  test_bad_create();
  TEST_MAIN_END("test_joint_sender");
}
