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

	// Deliveries to the bystander are published around the slow broker,
	// straight into the hub's handler, so that what they measure is the
	// path from the hub to the client, which the slow work of others
	// shares.
	inner := slow.Broker
	baseline := bystander{b: b, inner: inner, app: a.ID}.run(20)

	slow.SetLatency(brokerLatency)
	defer slow.SetLatency(0)
	start := time.Now()
	joiner.Subscribe("presence-room", channelToken(a, jSock, "presence-room", `{"user_id":"jo"}`), `{"user_id":"jo"}`)
	// An event for the channel published while the join is under way.
	go ts.hub.Publish(context.Background(), broker.Message{AppID: a.ID, Channel: "presence-room", Event: "during-join", Data: "x"}, hub.SourceREST)
	during := bystander{b: b, inner: inner, app: a.ID}.run(40)
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
	duringLeave := bystander{b: b, inner: inner, app: a.ID}.run(20)
	if ev := d.Expect("client-hi"); ev.UserID != "jo" {
		t.Fatalf("client event %+v", ev)
	}
	d.Expect("pusher_internal:member_removed")

	for name, p := range map[string]probeResult{"join": during, "leave": duringLeave} {
		for what, pair := range map[string][2][]time.Duration{"pong": {baseline.pongs, p.pongs}, "delivery": {baseline.deliveries, p.deliveries}} {
			base, now := median(pair[0]), median(pair[1])
			if gain := now - base; gain > 5*time.Millisecond {
				t.Errorf("during the %s the bystander's median %s took %v longer (baseline %v, now %v)", name, what, gain, base, now)
			}
			if worst := slices.Max(pair[1]); worst > brokerLatency/2 {
				t.Errorf("during the %s a %s took %v: the loop waited on the broker", name, what, worst)
			}
		}
	}
}

// bystander measures what a bystander client sees: the round trip of a
// pusher:ping, and how long after the hub took an event for its channel
// the event arrives.
type bystander struct {
	b     *wsClient
	inner broker.Broker
	app   string
}

type probeResult struct{ pongs, deliveries []time.Duration }

// run measures n pongs and n deliveries, 10 ms apart.
func (p bystander) run(n int) probeResult {
	p.b.T.Helper()
	var r probeResult
	for range n {
		t0 := time.Now()
		p.b.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
		p.b.Expect("pusher:pong")
		r.pongs = append(r.pongs, time.Since(t0))
		// The memory broker hands the event to the hub at once, and the
		// hub to the connection's queue, before Publish returns.
		t0 = time.Now()
		if err := p.inner.Publish(context.Background(), broker.Message{AppID: p.app, Channel: "news", Event: "tick", Data: "x"}); err != nil {
			p.b.T.Fatal(err)
		}
		p.b.Expect("tick")
		r.deliveries = append(r.deliveries, time.Since(t0))
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
