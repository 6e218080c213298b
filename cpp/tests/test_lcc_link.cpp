#include <doctest/doctest.h>
#include <zmq.h>

#include <chrono>
#include <string>
#include <vector>

#include "laserguard/link/lcc_link.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

using namespace laserguard;
using namespace std::chrono_literals;

namespace {

std::string recv_string(void* socket) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  REQUIRE(zmq_msg_recv(&msg, socket, 0) >= 0);
  std::string s(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
  zmq_msg_close(&msg);
  return s;
}

Feedback feedback(std::uint32_t lcc, std::uint64_t seq) {
  Feedback f;
  f.lcc_id = lcc;
  f.seq = seq;
  f.n_features = 11;
  f.n_units = 2;
  f.top_k = 1;
  f.anomalous_units = {1};
  f.scores = {0.1F, -0.2F};
  f.top_weights = {0.0F, 0.9F};
  f.top_features = {-1, 2};
  return f;
}

}  // namespace

TEST_CASE("each publisher (one LCC start) gets its own random boot id, or the one it is given") {
  ZmqContext ctx;
  TelemetryPublisher a(ctx, "tcp://127.0.0.1:*", 10);
  TelemetryPublisher b(ctx, "tcp://127.0.0.1:*", 10);
  CHECK(a.boot_id() != b.boot_id());  // 2^-64 chance of a false failure
  TelemetryPublisher c(ctx, "tcp://127.0.0.1:*", 10, 0x1234ULL);
  CHECK(c.boot_id() == 0x1234ULL);
}

TEST_CASE("publisher numbers frames per LCC and a subscriber decodes them") {
  ZmqContext ctx;
  TelemetryPublisher pub(ctx, "tcp://127.0.0.1:*", 100);
  ZmqSocket sub(ctx, ZMQ_SUB);
  sub.set_bytes(ZMQ_SUBSCRIBE, "lcc.", 4, "ZMQ_SUBSCRIBE");
  sub.set_int(ZMQ_RCVTIMEO, 100, "ZMQ_RCVTIMEO");
  sub.connect(pub.endpoint());
  std::vector<float> values(2 * kChannelCount, 1.5F);
  const std::vector<float> setpoints{8.0F, 6.5F};
  const std::vector<UnitState> states{UnitState::kOn, UnitState::kDerated};
  // Late joiner handled: wait for the subscription, then not even frame 0 is lost.
  REQUIRE(pub.wait_for_subscriber(5s));
  CHECK(pub.subscriptions() == 1);
  pub.publish(7, 0, 2, kChannelCount, values.data(), setpoints.data(), states.data());
  const std::string topic = recv_string(sub.handle());
  const std::string payload = recv_string(sub.handle());
  CHECK(topic == "lcc.7.telemetry");
  const auto view = decode_telemetry(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
  CHECK(view.header.lcc_id == 7);
  CHECK(view.header.boot_id == pub.boot_id());
  CHECK(view.header.seq == 0);
  CHECK(view.unit_state(1) == UnitState::kDerated);
  std::vector<float> setpoints_back(2);
  view.copy_setpoints(setpoints_back.data());
  CHECK(setpoints_back == setpoints);
  const auto first = view.header.seq;
  const auto r1 = pub.publish(7, 0, 2, kChannelCount, values.data(), setpoints.data(), states.data());
  const auto r2 = pub.publish(8, 0, 2, kChannelCount, values.data(), setpoints.data(), states.data());
  CHECK(r1.sent);
  CHECK(r2.seq == 0);  // sequence numbers are per LCC
  CHECK(r1.seq > first);
  CHECK(pub.frames_sent() == 3);
  CHECK(pub.frames_dropped() == 0);
}

TEST_CASE("sends never block: a stalled subscriber at the HWM makes counted drops") {
  ZmqContext ctx;
  TelemetryPublisher pub(ctx, "tcp://127.0.0.1:*", 1);
  ZmqSocket sub(ctx, ZMQ_SUB);
  sub.set_int(ZMQ_RCVHWM, 1, "ZMQ_RCVHWM");
  sub.set_bytes(ZMQ_SUBSCRIBE, "", 0, "ZMQ_SUBSCRIBE");
  sub.connect(pub.endpoint());
  std::vector<float> values(kChannelCount, 0.0F);
  const float setpoint = 8.0F;
  const UnitState on = UnitState::kOn;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pub.frames_dropped() == 0 && std::chrono::steady_clock::now() < deadline)
    pub.publish(1, 0, 1, kChannelCount, values.data(), &setpoint, &on);
  CHECK(pub.frames_dropped() > 0);
  const auto before = pub.frames_sent() + pub.frames_dropped();
  const auto r = pub.publish(1, 0, 1, kChannelCount, values.data(), &setpoint, &on);
  CHECK(r.seq == before);  // a dropped frame still consumes its sequence number
}

TEST_CASE("feedback subscriber returns valid messages and counts rejects by reason") {
  ZmqContext ctx;
  FeedbackSubscriber sub(ctx, "tcp://127.0.0.1:*", 100, {3});
  ZmqSocket pub(ctx, ZMQ_PUB);
  pub.connect(sub.endpoint());
  const auto good = encode_feedback(feedback(3, 42));
  const std::string topic = "lcc.3.anomaly";
  std::optional<Feedback> got;
  for (int i = 0; i < 200 && !got; ++i) {
    zmq_send(pub.handle(), topic.data(), topic.size(), ZMQ_SNDMORE);
    zmq_send(pub.handle(), good.data(), 20, 0);  // truncated
    zmq_send(pub.handle(), topic.data(), topic.size(), ZMQ_SNDMORE);
    zmq_send(pub.handle(), good.data(), good.size(), 0);
    got = sub.poll(10ms);
  }
  REQUIRE(got.has_value());
  CHECK(got->seq == 42);
  CHECK(got->anomalous_units == std::vector<std::uint32_t>{1});
  // Joined now: a bad message is skipped and counted, the good one after it returned.
  zmq_send(pub.handle(), topic.data(), topic.size(), ZMQ_SNDMORE);
  zmq_send(pub.handle(), good.data(), 20, 0);  // truncated
  zmq_send(pub.handle(), topic.data(), topic.size(), ZMQ_SNDMORE);
  zmq_send(pub.handle(), good.data(), good.size(), 0);
  REQUIRE(sub.poll(2s).has_value());
  CHECK(sub.rejects().at("truncated") >= 1);
  // A payload for LCC 4 under LCC 3's topic is refused.
  const auto other = encode_feedback(feedback(4, 1));
  zmq_send(pub.handle(), topic.data(), topic.size(), ZMQ_SNDMORE);
  zmq_send(pub.handle(), other.data(), other.size(), 0);
  CHECK_FALSE(sub.poll(200ms).has_value());
  CHECK(sub.rejects().at("bad_topic") == 1);
  CHECK_FALSE(sub.poll(0ns).has_value());
}

TEST_CASE("binding an endpoint twice is a clear error") {
  ZmqContext ctx;
  TelemetryPublisher a(ctx, "tcp://127.0.0.1:*", 10);
  CHECK_THROWS_WITH_AS(TelemetryPublisher(ctx, a.endpoint(), 10), doctest::Contains("cannot bind"), LinkError);
}
