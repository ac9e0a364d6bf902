package pusher

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

// clockedSession is a session on a fake transport whose timers run on a
// clock the test steps: the liveness and sign-in rules without sleeping.
type clockedSession struct {
	*Session
	tr    *testkit.Transport
	clock *testkit.Clock
	t     *testing.T
}

func newClockedSession(t *testing.T, a apps.App) *clockedSession {
	t.Helper()
	a.ID, a.Key, a.Secret = "1", "key", "secret"
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(time.Unix(1_700_000_000, 0))
	h := hub.New(hub.Config{Broker: broker.NewMemory(0)})
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), PongTimeout: 30 * time.Second, Clock: clock})
	tr := &testkit.Transport{}
	tr.SetLastRead(clock.Now())
	hc, err := h.Admit("1", 0, tr)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(fe, reg.ByID("1"), hc)
	hc.Attach(s)
	s.start()
	t.Cleanup(func() { s.HandleClose(nil) })
	cs := &clockedSession{Session: s, tr: tr, clock: clock, t: t}
	if got := cs.events(); len(got) != 1 || got[0] != "pusher:connection_established" {
		t.Fatalf("sent %v at start", got)
	}
	return cs
}

// events decodes what was sent since the last call.
func (cs *clockedSession) events() []string {
	cs.t.Helper()
	var out []string
	for _, b := range cs.tr.Take() {
		var m sent
		if err := json.Unmarshal(b, &m); err != nil {
			cs.t.Fatal(err)
		}
		out = append(out, m.Event)
	}
	return out
}

func (cs *clockedSession) expect(want ...string) {
	cs.t.Helper()
	got := cs.events()
	if len(got) != len(want) {
		cs.t.Fatalf("sent %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			cs.t.Fatalf("sent %v, want %v", got, want)
		}
	}
}

// A silent client is pinged after the activity timeout and closed with
// 4201 when the pong timeout passes without an answer; one that answers
// stays, and its next ping comes an activity timeout after its answer.
func TestLivenessOnTheClock(t *testing.T) {
	cs := newClockedSession(t, apps.App{ActivityTimeout: 120 * time.Second})
	cs.clock.Advance(119 * time.Second)
	cs.expect()
	cs.clock.Advance(time.Second)
	cs.expect("pusher:ping")
	// The client answers 10 s later.
	cs.clock.Advance(10 * time.Second)
	cs.tr.SetLastRead(cs.clock.Now())
	cs.clock.Advance(20 * time.Second) // the pong timeout's check: answered
	cs.expect()
	if code, _, _ := cs.tr.Closed(); code != 0 {
		t.Fatalf("closed with %d after answering", code)
	}
	cs.clock.Advance(99 * time.Second) // 119 s after the answer
	cs.expect()
	cs.clock.Advance(time.Second)
	cs.expect("pusher:ping")
	// Now silence.
	cs.clock.Advance(30 * time.Second)
	cs.expect("pusher:error")
	if code, _, aborted := cs.tr.Closed(); code != int(CodePongTimeout) || aborted {
		t.Fatalf("closed %d (aborted %v), want 4201", code, aborted)
	}
	if r := cs.reason.Load(); r != uint32(hub.ReasonPongTimeout)+1 {
		t.Fatalf("reason %d", r)
	}
}

// An app that requires sign-in closes a connection that neither signs in
// nor joins an authorized channel within the sign-in timeout; joining a
// public channel does not count.
func TestSigninTimeoutOnTheClock(t *testing.T) {
	cs := newClockedSession(t, apps.App{RequireSignin: true, SigninTimeout: 5 * time.Second, ActivityTimeout: 120 * time.Second})
	cs.HandleMessage([]byte(`{"event":"pusher:subscribe","data":{"channel":"news"}}`))
	cs.expect("pusher_internal:subscription_succeeded")
	cs.clock.Advance(4 * time.Second)
	if code, _, _ := cs.tr.Closed(); code != 0 {
		t.Fatalf("closed early with %d", code)
	}
	cs.clock.Advance(time.Second)
	cs.expect("pusher:error")
	if code, _, _ := cs.tr.Closed(); code != int(CodeUnauthorized) {
		t.Fatalf("closed %d, want 4009", code)
	}
}
