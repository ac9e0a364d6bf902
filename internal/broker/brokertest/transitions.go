package brokertest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// transRec is a TransitionHandler that keeps the transitions of one
// subtest's apps.
type transRec struct {
	prefix string
	mu     sync.Mutex
	ts     []broker.Transition
}

func (r *transRec) handle(t broker.Transition) {
	if !strings.HasPrefix(t.AppID, r.prefix) {
		return
	}
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.mu.Unlock()
}

func (r *transRec) snapshot() []broker.Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.Transition(nil), r.ts...)
}

// mark is the number of transitions so far, for since.
func (r *transRec) mark() int { return len(r.snapshot()) }

// since is the transitions after mark m.
func (r *transRec) since(m int) []broker.Transition { return r.snapshot()[m:] }

// wait returns the first transition after mark m that matches.
func (r *transRec) wait(t *testing.T, m int, what string, match func(broker.Transition) bool) broker.Transition {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		for _, x := range r.since(m) {
			if match(x) {
				return x
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; got %s", what, deliveryTimeout, fmtTrans(r.since(m)))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func fmtTrans(ts []broker.Transition) string {
	var b strings.Builder
	for _, x := range ts {
		fmt.Fprintf(&b, "[%v %s %s", x.Kind, x.Channel, x.UserID)
		if x.Kind == broker.TransitionCount {
			fmt.Fprintf(&b, " %d", x.Count)
		}
		b.WriteString("] ")
	}
	return b.String()
}

func isTrans(k broker.TransitionKind, ch string) func(broker.Transition) bool {
	return func(x broker.Transition) bool { return x.Kind == k && x.Channel == ch }
}

func isCount(ch string, n int) func(broker.Transition) bool {
	return func(x broker.Transition) bool {
		return x.Kind == broker.TransitionCount && x.Channel == ch && x.Count == n
	}
}

func count(ts []broker.Transition, match func(broker.Transition) bool) int {
	n := 0
	for _, x := range ts {
		if match(x) {
			n++
		}
	}
	return n
}

func settleWant(t *testing.T, b broker.Broker, x broker.Transition, want bool) {
	t.Helper()
	got, err := b.Settle(t.Context(), x)
	if err != nil {
		t.Fatalf("Settle(%v %s %s): %v", x.Kind, x.Channel, x.UserID, err)
	}
	if got != want {
		t.Fatalf("Settle(%v %s %s epoch %d) = %v, want %v", x.Kind, x.Channel, x.UserID, x.Epoch, got, want)
	}
}

// testTransitions: occupation is reported on 0 to n, the count on each
// change, a vacancy on n to 0 and is settled once; an occupation while a
// vacancy is pending cancels it and is not reported. The same for a
// member's first join and last leave.
func testTransitions(t *testing.T, s *suite) {
	tr := &transRec{prefix: s.prefix}
	s.b.SetTransitionHandler(tr.handle, nil)
	b, app, ch := s.b, s.app("t"), "occ"

	m := tr.mark()
	b.SetLocalCount(app, ch, 1)
	tr.wait(t, m, "count 1", isCount(ch, 1))
	if got := tr.since(m); count(got, isTrans(broker.TransitionOccupied, ch)) != 1 || got[0].Kind != broker.TransitionOccupied {
		t.Fatalf("first subscriber: %s, want occupied then the count", fmtTrans(got))
	}
	m = tr.mark()
	b.SetLocalCount(app, ch, 2)
	tr.wait(t, m, "count 2", isCount(ch, 2))
	b.SetLocalCount(app, ch, 0)
	vac := tr.wait(t, m, "vacated", isTrans(broker.TransitionVacated, ch))
	if vac.Epoch == 0 || vac.AppID != app {
		t.Fatalf("vacated %+v: no epoch", vac)
	}
	tr.wait(t, m, "count 0", isCount(ch, 0))
	settleWant(t, b, vac, true)
	settleWant(t, b, vac, false)

	// Settled: the next subscriber occupies again.
	m = tr.mark()
	b.SetLocalCount(app, ch, 1)
	tr.wait(t, m, "occupied again", isTrans(broker.TransitionOccupied, ch))
	b.SetLocalCount(app, ch, 0)
	vac2 := tr.wait(t, m, "vacated again", isTrans(broker.TransitionVacated, ch))
	if vac2.Epoch == vac.Epoch {
		t.Fatal("two vacancies share an epoch")
	}
	// A reload: back before the vacancy was settled cancels both.
	m = tr.mark()
	b.SetLocalCount(app, ch, 1)
	tr.wait(t, m, "count 1", isCount(ch, 1))
	if n := count(tr.since(m), isTrans(broker.TransitionOccupied, ch)); n != 0 {
		t.Fatalf("re-occupation within a pending vacancy reported: %s", fmtTrans(tr.since(m)))
	}
	settleWant(t, b, vac2, false)
	b.SetLocalCount(app, ch, 0)
	vac3 := tr.wait(t, m, "vacated", isTrans(broker.TransitionVacated, ch))
	settleWant(t, b, vac3, true)

	// Members, by user: one report per first connection and per last.
	pch := "presence-p"
	m = tr.mark()
	s.join(t, app, pch, "c1", "u1", 0)
	tr.wait(t, m, "member added", isTrans(broker.TransitionMemberAdded, pch))
	s.join(t, app, pch, "c2", "u1", 0)
	s.join(t, app, pch, "c2", "u1", 0) // a repeated join of one connection
	s.leave(t, app, pch, "c1", "u1")
	m2 := tr.mark()
	s.leave(t, app, pch, "c2", "u1")
	rem := tr.wait(t, m2, "member removed", isTrans(broker.TransitionMemberRemoved, pch))
	if rem.UserID != "u1" || rem.Epoch == 0 {
		t.Fatalf("member removed %+v", rem)
	}
	if got := tr.since(m); count(got, isTrans(broker.TransitionMemberAdded, pch)) != 1 || count(got, isTrans(broker.TransitionMemberRemoved, pch)) != 1 {
		t.Fatalf("one user with two connections: %s", fmtTrans(got))
	}
	m = tr.mark()
	s.join(t, app, pch, "c3", "u1", 0) // back within the delay
	settleWant(t, b, rem, false)
	s.leave(t, app, pch, "c3", "u1")
	rem2 := tr.wait(t, m, "member removed", isTrans(broker.TransitionMemberRemoved, pch))
	if n := count(tr.since(m), isTrans(broker.TransitionMemberAdded, pch)); n != 0 {
		t.Fatalf("a re-join within a pending removal was reported: %s", fmtTrans(tr.since(m)))
	}
	settleWant(t, b, rem2, true)
	settleWant(t, b, broker.Transition{Kind: broker.TransitionMemberRemoved, AppID: app, Channel: pch, UserID: "nobody", Epoch: rem2.Epoch}, false)

	// A first subscriber's count, then its join at once, as the hub does:
	// the occupation is reported before the member.
	for i := range 5 {
		och := fmt.Sprintf("presence-order-%d", i)
		m := tr.mark()
		b.SetLocalCount(app, och, 1)
		s.join(t, app, och, "o1", "u1", 0)
		tr.wait(t, m, "member added", isTrans(broker.TransitionMemberAdded, och))
		var kinds []broker.TransitionKind
		for _, x := range tr.since(m) {
			if x.Channel == och && x.Kind != broker.TransitionCount {
				kinds = append(kinds, x.Kind)
			}
		}
		if len(kinds) != 2 || kinds[0] != broker.TransitionOccupied {
			t.Fatalf("subscribe then join: %s, want occupied then member added", fmtTrans(tr.since(m)))
		}
	}
}

// testTransitionsForSomeApps: only the apps the handler was set for are
// reported.
func testTransitionsForSomeApps(t *testing.T, s *suite) {
	tr := &transRec{prefix: s.prefix}
	yes, no := s.app("yes"), s.app("no")
	s.b.SetTransitionHandler(tr.handle, func(app string) bool { return app == yes })
	for _, app := range []string{no, yes} {
		s.b.SetLocalCount(app, "ch", 1)
		wantCount(t, s.b, app, "ch", 1) // written, not coalesced away
		s.join(t, app, "presence-p", "c1", "u1", 0)
		s.leave(t, app, "presence-p", "c1", "u1")
		s.b.SetLocalCount(app, "ch", 0)
	}
	tr.wait(t, 0, "vacated of yes", isTrans(broker.TransitionVacated, "ch"))
	tr.wait(t, 0, "removed of yes", isTrans(broker.TransitionMemberRemoved, "presence-p"))
	time.Sleep(20 * time.Millisecond)
	for _, x := range tr.snapshot() {
		if x.AppID != yes {
			t.Fatalf("reported for an app not asked for: %s", fmtTrans([]broker.Transition{x}))
		}
	}
}

// clusterTrans sets a transition recorder on every node.
func (cs *clusterSuite) clusterTrans() []*transRec {
	var out []*transRec
	for _, n := range cs.nodes {
		r := &transRec{prefix: cs.prefix}
		n.SetTransitionHandler(r.handle, nil)
		out = append(out, r)
	}
	return out
}

func all(trs []*transRec) []broker.Transition {
	var out []broker.Transition
	for _, r := range trs {
		out = append(out, r.snapshot()...)
	}
	return out
}

// testClusterTransitions: a channel with subscribers on two nodes is
// occupied once and vacated once, after the last subscriber anywhere left,
// reported by the node that made the change; a member on two nodes is
// added once and removed once; and any node may settle.
func testClusterTransitions(t *testing.T, cs *clusterSuite) {
	trs := cs.clusterTrans()
	a, b := cs.nodes[0], cs.nodes[1]
	app, ch := cs.app("t"), "occ"

	a.SetLocalCount(app, ch, 1)
	trs[0].wait(t, 0, "occupied on a", isTrans(broker.TransitionOccupied, ch))
	b.SetLocalCount(app, ch, 3)
	trs[1].wait(t, 0, "count 4 on b", isCount(ch, 4))
	a.SetLocalCount(app, ch, 0)
	trs[0].wait(t, 0, "count 3 on a", isCount(ch, 3))
	mb := trs[1].mark()
	b.SetLocalCount(app, ch, 0)
	vac := trs[1].wait(t, mb, "vacated on b", isTrans(broker.TransitionVacated, ch))
	got := all(trs)
	if count(got, isTrans(broker.TransitionOccupied, ch)) != 1 || count(got, isTrans(broker.TransitionVacated, ch)) != 1 {
		t.Fatalf("transitions %s, want one occupied and one vacated", fmtTrans(got))
	}
	settleWant(t, a, vac, true)
	settleWant(t, b, vac, false)

	pch := "presence-p"
	join(t, a, app, pch, "a1", "u1", 0)
	trs[0].wait(t, 0, "added on a", isTrans(broker.TransitionMemberAdded, pch))
	join(t, b, app, pch, "b1", "u1", 0)
	leave(t, a, app, pch, "a1", "u1")
	leave(t, b, app, pch, "b1", "u1")
	rem := trs[1].wait(t, 0, "removed on b", isTrans(broker.TransitionMemberRemoved, pch))
	join(t, a, app, pch, "a2", "u1", 0) // back on the other node within the delay
	settleWant(t, a, rem, false)
	leave(t, a, app, pch, "a2", "u1")
	rem2 := trs[0].wait(t, 0, "removed on a", isTrans(broker.TransitionMemberRemoved, pch))
	got = all(trs)
	if count(got, isTrans(broker.TransitionMemberAdded, pch)) != 1 || count(got, isTrans(broker.TransitionMemberRemoved, pch)) != 2 {
		t.Fatalf("transitions %s, want one added and two removals", fmtTrans(got))
	}
	settleWant(t, b, rem2, true)
}

// testClusterTransitionsRace: joins and leaves of one user, and
// subscriber counts of one channel, racing on both nodes, end with one
// occupied and one member_added reported in all, and of the vacancies and
// removals reported exactly one (the last) settles.
func testClusterTransitionsRace(t *testing.T, cs *clusterSuite) {
	trs := cs.clusterTrans()
	app, ch, pch := cs.app("r"), "occ", "presence-r"
	var wg sync.WaitGroup
	for i, n := range cs.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 40 {
				n.SetLocalCount(app, ch, rand.IntN(3))
				conn := fmt.Sprintf("n%d-%d", i, j)
				if _, err := n.Join(t.Context(), app, pch, conn, member("u"), 0); err != nil {
					t.Errorf("Join: %v", err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				if _, err := n.Leave(t.Context(), app, pch, conn, "u"); err != nil {
					t.Errorf("Leave: %v", err)
					return
				}
			}
			n.SetLocalCount(app, ch, 0)
		}()
	}
	wg.Wait()
	eventually(t, "the count back to 0", func() string {
		if n, err := cs.nodes[0].SubscriptionCount(t.Context(), app, ch); err != nil || n != 0 {
			return fmt.Sprintf("count %d (%v)", n, err)
		}
		return ""
	})
	time.Sleep(100 * time.Millisecond) // the last reports
	got := all(trs)
	for _, c := range []struct {
		up, down broker.TransitionKind
		ch       string
	}{{broker.TransitionOccupied, broker.TransitionVacated, ch}, {broker.TransitionMemberAdded, broker.TransitionMemberRemoved, pch}} {
		if n := count(got, isTrans(c.up, c.ch)); n != 1 {
			t.Errorf("%d %v reported, want 1: %s", n, c.up, fmtTrans(got))
		}
		settled := 0
		for _, x := range got {
			if x.Kind != c.down || x.Channel != c.ch {
				continue
			}
			ok, err := cs.nodes[0].Settle(t.Context(), x)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				settled++
			}
		}
		if settled != 1 {
			t.Errorf("%d %v settled, want 1", settled, c.down)
		}
	}
}

// testClusterCrashTransitions: the survivor that removes a crashed node
// reports the vacancies and removals the dead node owed, once.
func testClusterCrashTransitions(t *testing.T, cs *clusterSuite) {
	trs := cs.clusterTrans()
	x := cs.nodes[2]
	app, ch, pch := cs.app("c"), "occ", "presence-c"
	x.SetLocalCount(app, ch, 2)
	cs.nodes[0].SetLocalCount(app, "shared", 1)
	x.SetLocalCount(app, "shared", 1)
	join(t, x, app, pch, "x1", "alone", 0)
	join(t, x, app, pch, "x2", "both", 0)
	join(t, cs.nodes[0], app, pch, "a1", "both", 0)
	trs[2].wait(t, 0, "occupied on x", isTrans(broker.TransitionOccupied, ch))
	wantCount(t, cs.nodes[0], app, "shared", 2)
	wantCount(t, cs.nodes[0], app, ch, 2)
	cs.settle(t, x)
	cs.c.Crash(x)
	cs.c.Expire()
	survivors := cs.nodes[:2]
	for _, n := range survivors {
		if err := keeper(n).Heartbeat(t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
	}
	marks := []int{trs[0].mark(), trs[1].mark()}
	var wg sync.WaitGroup
	for _, n := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := keeper(n).Sweep(t.Context()); err != nil {
				t.Errorf("Sweep: %v", err)
			}
		}()
	}
	wg.Wait()
	var owed []broker.Transition
	for i := range survivors {
		for _, o := range trs[i].since(marks[i]) {
			if o.AppID == app { // not the settle markers
				owed = append(owed, o)
			}
		}
	}
	want := "[vacated occ ] [member_removed presence-c alone] "
	sortTrans(owed)
	if fmtTrans(owed) != want {
		t.Fatalf("the survivors reported %s, want %s (once; shared still has a subscriber, both a connection)", fmtTrans(owed), want)
	}
	for _, o := range owed {
		settleWant(t, cs.nodes[1], o, true)
	}
}

func sortTrans(ts []broker.Transition) {
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if ts[j].Kind < ts[i].Kind {
				ts[i], ts[j] = ts[j], ts[i]
			}
		}
	}
}
