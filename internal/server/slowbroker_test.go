package server

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/wsconn"
)

// brokerLatency is what the slow broker adds to every operation: far more
// than a Redis round trip, so that any of it landing on a transport loop
// shows.
const brokerLatency = 300 * time.Millisecond

// With every broker operation taking 300 ms, a client whose presence join,
// client events and leave wait on the broker holds nobody else up: another
// client served by the same (single) epoll loop, or on the goroutine
// transport, gets its pongs and its deliveries as fast as before. And the
// slow broker does not reorder what clients see: the joiner's confirmation
// comes before the channel's events, and the others hear of the joiner
// only after it was confirmed.
func TestSlowBrokerBlocksNoOne(t *testing.T) {
	for _, tr := range []string{wsconn.TransportEpoll, wsconn.TransportGoroutine} {
		t.Run(tr, func(t *testing.T) { testSlowBroker(t, tr) })
	}
}

func testSlowBroker(t *testing.T, transport string) {
	a := testApp("1")
	slow := brokertest.NewFaulty(broker.NewMemory(0))
	ts := startServerOpts(t, config.Config{Apps: []apps.App{a}, Transport: transport}, options{broker: slow, pollers: 1}, nil)

	// The bystander: on a public channel, pinging all along.
	b, _ := connect(t, ts, a.Key)
	b.Subscribe("news", "", "")
	b.Expect("pusher_internal:subscription_succeeded")
	// A member already in the presence channel.
	d, dSock := connect(t, ts, a.Key)
	d.Subscribe("presence-room", channelToken(a, dSock, "presence-room", `{"user_id":"dora"}`), `{"user_id":"dora"}`)
	d.Expect("pusher_internal:subscription_succeeded")
	joiner, jSock := connect(t, ts, a.Key)

	baseline := pingRTTs(b, 20)

	slow.SetLatency(brokerLatency)
	defer slow.SetLatency(0)
	start := time.Now()
	joiner.Subscribe("presence-room", channelToken(a, jSock, "presence-room", `{"user_id":"jo"}`), `{"user_id":"jo"}`)
	// An event for the channel published while the join is under way.
	go ts.hub.Publish(context.Background(), broker.Message{AppID: a.ID, Channel: "presence-room", Event: "during-join", Data: "x"}, hub.SourceREST)
	// A delivery to the bystander while the broker is slow: published
	// around the broker, straight into the hub's handler, so what it
	// measures is the path from the hub to the client.
	during := pingRTTs(b, 40)
	if elapsed := time.Since(start); elapsed < brokerLatency {
		t.Fatalf("the pings took %v, less than one broker call: they did not overlap the join", elapsed)
	}

	// Ordering under the slow broker.
	first := joiner.Read()
	if first.Event != "pusher_internal:subscription_succeeded" || first.Channel != "presence-room" {
		t.Fatalf("joiner's first message %s %s, want its subscription_succeeded", first.Event, first.Channel)
	}
	joinedAt := time.Now()
	if ev := joiner.Read(); ev.Event != "during-join" {
		t.Fatalf("joiner's second message %s, want the event published during the join", ev.Event)
	}
	added := d.Expect("pusher_internal:member_added")
	var m struct {
		UserID string `json:"user_id"`
	}
	var s string
	json.Unmarshal(added.Data, &s)
	json.Unmarshal([]byte(s), &m)
	if m.UserID != "jo" {
		t.Fatalf("member_added %s", added.Data)
	}
	if time.Now().Before(joinedAt) {
		t.Fatal("member_added before the joiner's confirmation")
	}
	if time.Since(start) < 2*brokerLatency {
		t.Fatalf("join confirmed after %v: the slow broker was not in the path", time.Since(start))
	}

	// Client events and a leave queue behind the broker too.
	joiner.Send(map[string]any{"event": "client-hi", "channel": "presence-room", "data": map[string]any{}})
	joiner.Send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "presence-room"}})
	duringLeave := pingRTTs(b, 20)
	if ev := d.Expect("client-hi"); ev.UserID != "jo" {
		t.Fatalf("client event %+v", ev)
	}
	d.Expect("pusher_internal:member_removed")

	// Deliveries to the bystander are as prompt as its pongs.
	for i := range 5 {
		sent := time.Now()
		ts.hub.Publish(context.Background(), broker.Message{AppID: a.ID, Channel: "news", Event: "tick", Data: "x"}, hub.SourceREST)
		// The hub has handed the event to the connection when Publish
		// returns; what remains is the transport.
		handed := time.Now()
		b.Expect("tick")
		if lag := time.Since(handed); lag > 100*time.Millisecond {
			t.Fatalf("delivery %d took %v after the broker handed it over (publish took %v)", i, lag, handed.Sub(sent))
		}
	}

	base := median(baseline)
	for name, rtts := range map[string][]time.Duration{"join": during, "leave": duringLeave} {
		if gain := median(rtts) - base; gain > 5*time.Millisecond {
			t.Errorf("during the %s the bystander's median pong took %v longer (baseline %v, now %v)", name, gain, base, median(rtts))
		}
		if worst := slices.Max(rtts); worst > brokerLatency/2 {
			t.Errorf("during the %s a pong took %v: the loop waited on the broker", name, worst)
		}
	}
}

// pingRTTs pings n times, 10 ms apart, and returns the round trips.
func pingRTTs(c *wsClient, n int) []time.Duration {
	c.T.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		c.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
		c.Expect("pusher:pong")
		out = append(out, time.Since(t0))
		time.Sleep(10 * time.Millisecond)
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
