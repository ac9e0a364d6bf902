package server

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
)

// While the broker is unreachable, the node's clients stay connected and
// keep their pings answered, REST publishes and terminations answer 503
// (nothing accepted is lost) and /readyz 503; once it is back, everything
// works again without the clients doing anything.
func TestBrokerOutage(t *testing.T) {
	a := testApp("1")
	faulty := brokertest.NewFaulty(broker.NewMemory(0))
	ts := startServerOpts(t, config.Config{Apps: []apps.App{a}}, options{broker: faulty}, nil)

	pub, _ := connect(t, ts, a.Key)
	pub.Subscribe("news", "", "")
	pub.Expect("pusher_internal:subscription_succeeded")
	mem, memSock := connect(t, ts, a.Key)
	const data = `{"user_id":"u1"}`
	mem.Subscribe("presence-room", channelToken(a, memSock, "presence-room", data), data)
	mem.Expect("pusher_internal:subscription_succeeded")
	trigger := func() (int, string) {
		return testkit.REST(t, ts.addr, a, "POST", "/apps/1/events", nil, `{"name":"tick","channel":"news","data":"x"}`)
	}
	if code, body := trigger(); code != 200 {
		t.Fatalf("publish before the outage: %d %s", code, body)
	}
	pub.Expect("tick")
	waitFor(t, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })

	faulty.Disconnect()
	waitFor(t, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 503 })
	if code, body := probe(t, ts, "/readyz"); code != 503 || body != "broker unavailable" {
		t.Fatalf("/readyz during the outage: %d %q", code, body)
	}
	for range 3 {
		if code, body := trigger(); code != 503 || !strings.Contains(body, "broker is unreachable") {
			t.Fatalf("publish during the outage: %d %s, want 503", code, body)
		}
	}
	batch := `{"batch":[{"name":"tick","channel":"news","data":"x"}]}`
	if code, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/batch_events", nil, batch); code != 503 {
		t.Fatalf("batch during the outage: %d %s", code, body)
	}
	if code, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/users/u1/terminate_connections", nil, "{}"); code != 503 {
		t.Fatalf("terminate during the outage: %d %s", code, body)
	}
	// So do the channel queries, which the backend may retry.
	for _, path := range []string{"/apps/1/channels", "/apps/1/channels/news", "/apps/1/channels/presence-room/users"} {
		if code, body := testkit.REST(t, ts.addr, a, "GET", path, nil, ""); code != 503 || !strings.Contains(body, "broker is unreachable") {
			t.Fatalf("GET %s during the outage: %d %s, want 503", path, code, body)
		}
	}
	// The clients are still there, pinging, and got nothing.
	for range 5 {
		pub.Alive()
		mem.Alive()
		time.Sleep(20 * time.Millisecond)
	}
	pub.ExpectSilence(100 * time.Millisecond)
	// A client that connects now is still served (pings), even if what
	// needs the broker fails.
	late, _ := connect(t, ts, a.Key)
	late.Alive()

	faulty.Reconnect()
	waitFor(t, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
	if code, body := trigger(); code != 200 {
		t.Fatalf("publish after the outage: %d %s", code, body)
	}
	if m := pub.Expect("tick"); m.Channel != "news" {
		t.Fatalf("after the outage: %+v", m)
	}
	late.Subscribe("news", "", "")
	late.Expect("pusher_internal:subscription_succeeded")
	if code, _ := trigger(); code != 200 {
		t.Fatal("second publish after the outage failed")
	}
	pub.Expect("tick")
	late.Expect("tick")
	mem.Alive()
	if code, body := testkit.REST(t, ts.addr, a, "GET", "/apps/1/channels/presence-room/users", nil, ""); code != 200 || !strings.Contains(body, "u1") {
		t.Fatalf("users after the outage: %d %s", code, body)
	}
	// Presence still works for a newcomer, who sees the member from before.
	nc, ncSock := connect(t, ts, a.Key)
	const data2 = `{"user_id":"u2"}`
	nc.Subscribe("presence-room", channelToken(a, ncSock, "presence-room", data2), data2)
	if m := nc.Expect("pusher_internal:subscription_succeeded"); !strings.Contains(string(m.Data), "u1") {
		t.Fatalf("newcomer's member list %s lacks u1", m.Data)
	}
	mem.Expect("pusher_internal:member_added")
	// And terminate_connections is accepted again.
	if code, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/users/u1/terminate_connections", nil, "{}"); code != 200 {
		t.Fatalf("terminate after the outage: %d %s", code, body)
	}
}
