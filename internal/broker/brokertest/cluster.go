package brokertest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// Keeper is what a shared broker's node does to stay registered: refresh
// its registration and remove the nodes whose registration expired.
type Keeper interface {
	Heartbeat(ctx context.Context) error
	Sweep(ctx context.Context) error
}

// Cluster tells RunCluster how to drive the nodes of a shared broker.
type Cluster struct {
	Config
	// Crash stops b as a crashed node would stop: no more heartbeats, its
	// connection dropped, nothing cleaned up. Required.
	Crash func(b broker.Broker)
	// Expire moves the nodes' clock past the node TTL, so that a node that
	// does not heartbeat again is dead to a sweep. Required.
	Expire func()
	// RestartBackend restarts the shared backend empty (a Redis restart
	// that lost everything); nil skips the case.
	RestartBackend func(t *testing.T)
}

// RunCluster checks the multi-node side of the contract: newNodes returns
// n brokers sharing one backend, each a node of its own that implements
// Keeper, closed by newNodes' cleanup.
func RunCluster(t *testing.T, newNodes func(t *testing.T, n int) []broker.Broker, c Cluster) {
	if c.CacheTTL <= 0 {
		c.CacheTTL = broker.DefaultCacheTTL
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	tests := []struct {
		name  string
		nodes int
		fn    func(t *testing.T, cs *clusterSuite)
	}{
		{"PublishReachesEachNodeOnce", 3, testClusterPublishOnce},
		{"OrderAcrossNodes", 2, testClusterOrderAcrossNodes},
		{"BatchAcrossNodes", 2, testClusterBatch},
		{"PresenceAcrossNodes", 2, testClusterPresence},
		{"CountsSummed", 2, testClusterCounts},
		{"UsersOnceForCluster", 3, testClusterUsers},
		{"CrashedNodeSwept", 3, testClusterCrash},
		{"TransitionsOnceForCluster", 2, testClusterTransitions},
		{"TransitionsRacing", 2, testClusterTransitionsRace},
		{"CrashedNodeTransitions", 3, testClusterCrashTransitions},
		{"CloseLeavesAtOnce", 2, testClusterClose},
		{"BackendRestartedEmpty", 2, testClusterRestart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "brokertest-" + run + "-" + tt.name + "-"
			cs := &clusterSuite{c: c, prefix: prefix}
			for _, b := range newNodes(t, tt.nodes) {
				if _, ok := b.(Keeper); !ok {
					t.Fatalf("%T does not implement brokertest.Keeper", b)
				}
				r := &recorder{prefix: prefix}
				b.SetHandler(r.handle)
				cs.nodes = append(cs.nodes, b)
				cs.recs = append(cs.recs, r)
				// A node receives node-wide messages once it is
				// connected: one interest in effect shows that it is.
				interest(t, b, cs.app("warmup"), "warmup")
				b.SetLocalCount(cs.app("warmup"), "warmup", 0)
			}
			tt.fn(t, cs)
		})
	}
}

type clusterSuite struct {
	c      Cluster
	prefix string
	nodes  []broker.Broker
	recs   []*recorder
}

func (cs *clusterSuite) app(name string) string { return cs.prefix + name }

func publish(t *testing.T, b broker.Broker, m broker.Message) {
	t.Helper()
	if err := b.Publish(t.Context(), m); err != nil {
		t.Fatalf("Publish(%s %s %q): %v", m.AppID, m.Channel, m.Event, err)
	}
}

func join(t *testing.T, b broker.Broker, app, ch, conn, user string, maxMembers int) bool {
	t.Helper()
	first, err := b.Join(t.Context(), app, ch, conn, member(user), maxMembers)
	if err != nil {
		t.Fatalf("Join(%s, %s, %s): %v", ch, conn, user, err)
	}
	return first
}

func leave(t *testing.T, b broker.Broker, app, ch, conn, user string) bool {
	t.Helper()
	last, err := b.Leave(t.Context(), app, ch, conn, user)
	if err != nil {
		t.Fatalf("Leave(%s, %s, %s): %v", ch, conn, user, err)
	}
	return last
}

func wantMemberIDs(t *testing.T, b broker.Broker, app, ch string, sorted bool, users ...string) {
	t.Helper()
	got, err := b.Members(t.Context(), app, ch)
	if err != nil {
		t.Fatalf("Members(%s): %v", ch, err)
	}
	ids := make([]string, len(got))
	for i, m := range got {
		ids[i] = m.UserID
		if want := string(member(m.UserID).Info); string(m.Info) != want {
			t.Fatalf("Members(%s): %s has info %s, want %s", ch, m.UserID, m.Info, want)
		}
	}
	if sorted {
		slices.Sort(ids)
	}
	if !slices.Equal(ids, users) {
		t.Fatalf("Members(%s) = %q, want %q", ch, ids, users)
	}
}

// settle waits until what b's node reported before the call is applied:
// it reports a marker count and waits for it to be visible. Brokers apply
// one node's reports in order.
func (cs *clusterSuite) settle(t *testing.T, b broker.Broker) {
	t.Helper()
	app := cs.app("settle")
	ch := "marker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b.SetLocalCount(app, ch, 1)
	wantCount(t, b, app, ch, 1)
	b.SetLocalCount(app, ch, 0)
}

func keeper(b broker.Broker) Keeper { return b.(Keeper) }

func kindIs(k broker.Kind, user string) func(broker.Message) bool {
	return func(m broker.Message) bool { return m.Kind == k && m.UserID == user }
}

func testClusterPublishOnce(t *testing.T, cs *clusterSuite) {
	app := cs.app("a")
	const ch = "room"
	interest(t, cs.nodes[0], app, ch)
	interest(t, cs.nodes[1], app, ch)
	for i, b := range cs.nodes {
		publish(t, b, broker.Message{AppID: app, Channel: ch, Event: "from-" + strconv.Itoa(i)})
	}
	publish(t, cs.nodes[2], broker.Message{Kind: broker.KindTerminate, AppID: app, UserID: "u1"})
	publish(t, cs.nodes[1], broker.Message{Kind: broker.KindUnsubscribe, AppID: app, Channel: "uninterested", UserID: "u2"})
	isEvent := func(m broker.Message) bool { return m.Kind == broker.KindEvent }
	for i := range 2 {
		got := cs.recs[i].waitMatch(t, len(cs.nodes), isEvent)
		var names []string
		for _, m := range got {
			names = append(names, m.Event)
		}
		slices.Sort(names)
		if strings.Join(names, ",") != "from-0,from-1,from-2" {
			t.Fatalf("node %d received %q", i, names)
		}
	}
	// Node-wide messages reach every node.
	for i := range cs.nodes {
		cs.recs[i].waitMatch(t, 1, kindIs(broker.KindTerminate, "u1"))
		cs.recs[i].waitMatch(t, 1, kindIs(broker.KindUnsubscribe, "u2"))
	}
	if cs.c.InterestOnly {
		if got := cs.recs[2].waitMatch(t, 0, isEvent); len(got) != 0 {
			t.Fatalf("node without interest received %+v", got)
		}
	}
}

func testClusterOrderAcrossNodes(t *testing.T, cs *clusterSuite) {
	app := cs.app("a")
	const ch, n = "seq", 200
	for _, b := range cs.nodes {
		interest(t, b, app, ch)
	}
	for i := range n {
		publish(t, cs.nodes[i%len(cs.nodes)], broker.Message{AppID: app, Channel: ch, Event: "seq", Data: strconv.Itoa(i)})
	}
	for j, r := range cs.recs {
		got := r.wait(t, n)
		for i, m := range got {
			if m.Data != strconv.Itoa(i) {
				t.Fatalf("node %d: message %d is %s", j, i, m.Data)
			}
		}
	}
}

// A batch reaches every interested node once per message, in order per
// channel and across the batch, and keeps its place among single publishes;
// one holding a cached event writes the cache as Publish would.
func testClusterBatch(t *testing.T, cs *clusterSuite) {
	bp, ok := cs.nodes[0].(broker.BatchPublisher)
	if !ok {
		t.Skipf("%T publishes no batches", cs.nodes[0])
	}
	app := cs.app("a")
	chans := []string{"b1", "b2", "b3"}
	for _, b := range cs.nodes {
		interest(t, b, app, chans...)
	}
	var want []string
	seq := 0
	msg := func(ch string, cache bool) broker.Message {
		seq++
		want = append(want, ch+":"+strconv.Itoa(seq))
		return broker.Message{AppID: app, Channel: ch, Event: "e", Data: strconv.Itoa(seq), Cache: cache}
	}
	publish(t, cs.nodes[0], msg("b1", false))
	var batch []broker.Message
	for i := range 30 {
		batch = append(batch, msg(chans[i%3], false))
	}
	if n, err := bp.PublishBatch(t.Context(), batch); n != len(batch) || err != nil {
		t.Fatalf("PublishBatch = %d, %v; want %d, nil", n, err, len(batch))
	}
	publish(t, cs.nodes[0], msg("b2", false))
	cached := []broker.Message{msg("b1", false), msg("b3", true), msg("b1", false)}
	if n, err := bp.PublishBatch(t.Context(), cached); n != len(cached) || err != nil {
		t.Fatalf("PublishBatch with a cached event = %d, %v", n, err)
	}
	// The order is per channel: across channels the contract promises none.
	perChannel := func(msgs []string) map[string]string {
		out := map[string]string{}
		for _, m := range msgs {
			ch, _, _ := strings.Cut(m, ":")
			out[ch] += m + " "
		}
		return out
	}
	for j, r := range cs.recs {
		var got []string
		for _, m := range r.wait(t, len(want)) {
			got = append(got, m.Channel+":"+m.Data)
		}
		if g, w := perChannel(got), perChannel(want); !maps.Equal(g, w) {
			t.Fatalf("node %d received\n%v\nwant\n%v", j, g, w)
		}
	}
	last, ok, err := cs.nodes[1].LastEvent(t.Context(), app, "b3")
	if err != nil || !ok || !last.Message.Equal(&cached[1]) {
		t.Fatalf("LastEvent after a batch = %+v, %v, %v; want %+v", last, ok, err, cached[1])
	}
	if n, err := bp.PublishBatch(t.Context(), nil); n != 0 || err != nil {
		t.Fatalf("an empty batch = %d, %v", n, err)
	}
}

func testClusterPresence(t *testing.T, cs *clusterSuite) {
	app := cs.app("a")
	const ch = "presence-room"
	a, b := cs.nodes[0], cs.nodes[1]
	if !join(t, a, app, ch, "1.1", "alice", 3) {
		t.Fatal("alice on A: first = false")
	}
	if join(t, b, app, ch, "2.1", "alice", 3) {
		t.Fatal("alice on B too: first = true")
	}
	if !join(t, b, app, ch, "2.2", "bob", 3) {
		t.Fatal("bob on B: first = false")
	}
	if !join(t, a, app, ch, "1.2", "carol", 3) {
		t.Fatal("carol on A: first = false")
	}
	if _, err := b.Join(t.Context(), app, ch, "2.3", member("dave"), 3); !errors.Is(err, broker.ErrMemberLimit) {
		t.Fatalf("dave in a channel full over two nodes: %v, want ErrMemberLimit", err)
	}
	for _, n := range cs.nodes {
		wantMemberIDs(t, n, app, ch, false, "alice", "bob", "carol")
		wantMemberCount(t, n, app, ch, 3)
	}
	if leave(t, a, app, ch, "1.1", "alice") {
		t.Fatal("alice left A but is on B: last = true")
	}
	if !leave(t, b, app, ch, "2.1", "alice") {
		t.Fatal("alice left B, her last: last = false")
	}
	for _, n := range cs.nodes {
		wantMemberIDs(t, n, app, ch, false, "bob", "carol")
		wantMemberCount(t, n, app, ch, 2)
	}
}

func testClusterCounts(t *testing.T, cs *clusterSuite) {
	app := cs.app("a")
	a, b := cs.nodes[0], cs.nodes[1]
	a.SetLocalCount(app, "ch-1", 2)
	b.SetLocalCount(app, "ch-1", 3)
	b.SetLocalCount(app, "ch-2", 1)
	for _, n := range cs.nodes {
		wantCount(t, n, app, "ch-1", 5)
		wantChannels(t, n, app, "", cc("ch-1", 5), cc("ch-2", 1))
	}
	a.SetLocalCount(app, "ch-1", 0)
	wantCount(t, b, app, "ch-1", 3)
	b.SetLocalCount(app, "ch-1", 0)
	wantChannels(t, a, app, "", cc("ch-2", 1))
}

func testClusterUsers(t *testing.T, cs *clusterSuite) {
	app := cs.app("a")
	a, b := cs.nodes[0], cs.nodes[1]
	online, offline := kindIs(broker.KindUserOnline, "u1"), kindIs(broker.KindUserOffline, "u1")
	a.SetLocalUser(app, "u1", 1)
	for _, r := range cs.recs {
		r.waitMatch(t, 1, online)
	}
	b.SetLocalUser(app, "u1", 2)
	cs.settle(t, b)
	for _, n := range cs.nodes {
		wantOnline(t, n, app, []string{"u0", "u1"}, "u1")
	}
	a.SetLocalUser(app, "u1", 0)
	cs.settle(t, a)
	for _, n := range cs.nodes {
		wantOnline(t, n, app, []string{"u1"}, "u1")
	}
	b.SetLocalUser(app, "u1", 0)
	for _, r := range cs.recs {
		r.waitMatch(t, 1, offline)
		r.waitMatch(t, 1, online)
	}
	wantOnline(t, a, app, []string{"u1"})
}

// prepareLeaver gives node x a member of its own (alice), a member who is
// also on node 0 (bob), a count and a signed-in user, and makes the other
// nodes interested in the presence channel.
func (cs *clusterSuite) prepareLeaver(t *testing.T, x broker.Broker) (app, ch string) {
	app, ch = cs.app("a"), "presence-room"
	for _, n := range cs.nodes {
		if n != x {
			interest(t, n, app, ch)
		}
	}
	join(t, x, app, ch, "9.1", "alice", 0)
	join(t, x, app, ch, "9.2", "bob", 0)
	join(t, cs.nodes[0], app, ch, "1.1", "bob", 0)
	x.SetLocalCount(app, ch, 2)
	x.SetLocalUser(app, "u1", 1)
	x.SetLocalUser(app, "u2", 1)
	cs.nodes[0].SetLocalUser(app, "u2", 1)
	for _, r := range cs.recs {
		r.waitMatch(t, 1, kindIs(broker.KindUserOnline, "u1"))
	}
	cs.settle(t, x)
	cs.settle(t, cs.nodes[0])
	wantCount(t, cs.nodes[0], app, ch, 2+len(cs.nodes)-1)
	return app, ch
}

// checkLeft checks that x's state is gone and announced once on every
// surviving node.
func (cs *clusterSuite) checkLeft(t *testing.T, x int, app, ch string) {
	t.Helper()
	for i, n := range cs.nodes {
		if i == x {
			continue
		}
		r := cs.recs[i]
		r.waitMatch(t, 1, kindIs(broker.KindMemberRemoved, "alice"))
		r.waitMatch(t, 0, kindIs(broker.KindMemberRemoved, "bob"))
		r.waitMatch(t, 1, kindIs(broker.KindUserOffline, "u1"))
		r.waitMatch(t, 0, kindIs(broker.KindUserOffline, "u2"))
		wantMemberIDs(t, n, app, ch, false, "bob")
		wantMemberCount(t, n, app, ch, 1)
		wantCount(t, n, app, ch, len(cs.nodes)-1)
		wantOnline(t, n, app, []string{"u1", "u2"}, "u2")
	}
}

func testClusterCrash(t *testing.T, cs *clusterSuite) {
	x := cs.nodes[2]
	app, ch := cs.prepareLeaver(t, x)
	cs.c.Crash(x)
	cs.c.Expire()
	survivors := cs.nodes[:2]
	for _, n := range survivors {
		if err := keeper(n).Heartbeat(t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
	}
	// Nothing is removed before a sweep... and two survivors sweeping at
	// once remove the dead node once.
	var wg sync.WaitGroup
	errs := make([]error, len(survivors))
	for i, n := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = keeper(n).Sweep(t.Context())
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
	}
	cs.checkLeft(t, 2, app, ch)
	// A sweep with nothing expired removes nothing more.
	for _, n := range survivors {
		if err := keeper(n).Sweep(t.Context()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
	}
	wantMemberIDs(t, survivors[0], app, ch, false, "bob")
}

func testClusterClose(t *testing.T, cs *clusterSuite) {
	x := cs.nodes[1]
	app, ch := cs.prepareLeaver(t, x)
	if err := x.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cs.checkLeft(t, 1, app, ch)
	if err := x.Publish(t.Context(), broker.Message{AppID: app, Channel: ch, Event: "e"}); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}

func testClusterRestart(t *testing.T, cs *clusterSuite) {
	if cs.c.RestartBackend == nil {
		t.Skip("no way to restart the backend")
	}
	app := cs.app("a")
	const ch = "presence-room"
	a, b := cs.nodes[0], cs.nodes[1]
	interest(t, a, app, ch)
	interest(t, b, app, ch)
	b.SetLocalCount(app, ch, 2)
	join(t, a, app, ch, "1.1", "alice", 0)
	join(t, b, app, ch, "2.1", "bob", 0)
	a.SetLocalUser(app, "u1", 1)
	cs.settle(t, a)
	cs.settle(t, b)

	cs.c.RestartBackend(t)

	for _, n := range cs.nodes {
		eventually(t, "Heartbeat after the restart", func() string {
			if err := keeper(n).Heartbeat(t.Context()); err != nil {
				return err.Error()
			}
			return ""
		})
	}
	for _, n := range cs.nodes {
		wantCount(t, n, app, ch, 3)
		wantMemberIDs(t, n, app, ch, true, "alice", "bob")
		wantMemberCount(t, n, app, ch, 2)
		eventually(t, "OnlineUsers after the restart", func() string {
			got, err := n.OnlineUsers(t.Context(), app, []string{"u1"})
			if err != nil {
				return err.Error()
			}
			if len(got) != 1 {
				return "u1 not online"
			}
			return ""
		})
		eventually(t, "InterestReady after the restart", func() string {
			if !n.InterestReady(app, ch) {
				return "not ready"
			}
			return ""
		})
	}
	publish(t, a, broker.Message{AppID: app, Channel: ch, Event: "after-restart"})
	publish(t, b, broker.Message{AppID: app, Channel: ch, Event: "after-restart"})
	for _, r := range cs.recs {
		r.waitMatch(t, 2, func(m broker.Message) bool { return m.Event == "after-restart" })
	}
}
