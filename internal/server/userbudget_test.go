package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

// A user who reconnects in a loop gets fresh per-connection buckets every
// round; its budget on the node, shared by both protocols, still holds it
// to presence_join_rate's burst (100 by default) and then its rate (10/s).

// loopRounds is enough rounds to empty the default burst three times over.
const loopRounds = 300

// budgetIn is the most tokens the default budget gives in elapsed: the
// burst and the rate's refill on top of it.
func budgetIn(elapsed time.Duration) int {
	return apps.DefaultPresenceJoinRate*10 + int(elapsed.Seconds()*apps.DefaultPresenceJoinRate) + 1
}

// withinBudget fails unless n, the rounds allowed out of loopRounds in
// elapsed, is the burst and at most budgetIn(elapsed).
func withinBudget(t *testing.T, what string, n int, elapsed time.Duration) {
	t.Helper()
	most := budgetIn(elapsed)
	t.Logf("%s: %d of %d rounds in %v allowed (at most %d)", what, n, loopRounds, elapsed, most)
	if n < apps.DefaultPresenceJoinRate*10 || n > most {
		t.Errorf("%s: %d of %d rounds allowed in %v, want the burst of %d and at most %d", what, n, loopRounds, elapsed, apps.DefaultPresenceJoinRate*10, most)
	}
}

// signinsWithinBudget is withinBudget for sign-in rounds, each of which
// takes a token only when the previous round's close has reached the
// server (else it is not the user's first connection, and no news): the
// bound is on what the watcher heard, at most an online and an offline per
// token, and refusals show it bit.
func signinsWithinBudget(t *testing.T, what string, ok, changes int, elapsed time.Duration) {
	t.Helper()
	most := budgetIn(elapsed)
	t.Logf("%s: %d of %d rounds in %v allowed, watcher heard %d changes (at most %d)", what, ok, loopRounds, elapsed, changes, 2*most)
	if ok < apps.DefaultPresenceJoinRate*10 || ok == loopRounds || changes > 2*most {
		t.Errorf("%s: %d of %d rounds allowed in %v, watcher heard %d changes; want the burst of %d, refusals, at most %d changes", what, ok, loopRounds, elapsed, changes, apps.DefaultPresenceJoinRate*10, 2*most)
	}
}

// cfRound opens a Centrifugo connection, sends frame and returns the
// payloads of the first n replies; the caller closes it.
func cfRound(t *testing.T, ts *testServer, frame string, n int) (*wsClient, []string) {
	t.Helper()
	c := dial(t, ts, "/connection/websocket")
	if err := wsutil.WriteClientText(c.Conn, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []string
	for len(out) < n {
		f, err := ws.ReadFrame(c.BR)
		if err != nil {
			t.Fatal(err)
		}
		// Replies batched in one frame are newline-separated.
		out = append(out, strings.Split(strings.TrimSpace(string(f.Payload)), "\n")...)
	}
	return c, out
}

func cfConnect(tok string) string { return `{"connect":{"token":"` + tok + `"},"id":1}` }

func cfSubscribe(id int, ch, tok string) string {
	return fmt.Sprintf(`{"subscribe":{"channel":%q,"token":%q},"id":%d}`, ch, tok, id)
}

const tooManyRequests = `"error":{"code":111,"message":"too many requests","temporary":true}`

// memberEvents counts the member_added and member_removed c receives until
// it has been silent for a second.
func memberEvents(c *wsClient) (added, removed int) {
	for {
		m, err := c.Next(time.Second)
		if err != nil {
			return added, removed
		}
		switch m.Event {
		case "pusher_internal:member_added":
			added++
		case "pusher_internal:member_removed":
			removed++
		}
	}
}

// watchlistChanges counts the user ids of the watchlist events c receives
// until it has been silent for a second.
func watchlistChanges(t *testing.T, c *wsClient) int {
	n := 0
	for {
		m, err := c.Next(time.Second)
		if err != nil {
			return n
		}
		if m.Event != "pusher_internal:watchlist_events" {
			continue
		}
		var d struct {
			Events []struct {
				UserIDs []string `json:"user_ids"`
			} `json:"events"`
		}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, e := range d.Events {
			n += len(e.UserIDs)
		}
	}
}

func joinMember(t *testing.T, ts *testServer, a apps.App, ch, userID string) *wsClient {
	t.Helper()
	m, sid := connect(t, ts, a.Key)
	cd := `{"user_id":"` + userID + `"}`
	m.Subscribe(ch, channelToken(a, sid, ch, cd), cd)
	m.Expect("pusher_internal:subscription_succeeded")
	return m
}

// pusherJoin subscribes a fresh Pusher connection to ch as userID and
// reports whether it succeeded; a refusal must be the rate limit's.
func pusherJoin(t *testing.T, ts *testServer, a apps.App, ch, userID string) bool {
	t.Helper()
	c, sid := connect(t, ts, a.Key)
	defer c.Conn.Close()
	cd := `{"user_id":"` + userID + `"}`
	c.Subscribe(ch, channelToken(a, sid, ch, cd), cd)
	for {
		m := c.Read()
		switch m.Event {
		case "pusher_internal:subscription_succeeded":
			return true
		case "pusher:subscription_error":
			if !strings.Contains(string(m.Data), `"LimitReached"`) || !strings.Contains(string(m.Data), `"status":429`) {
				t.Fatalf("refused with %s", m.Data)
			}
			m = c.Expect("pusher:error")
			if _, msg := errorData(t, m); !strings.Contains(msg, "rate limit") {
				t.Fatalf("pusher:error %s", m.Data)
			}
			return false
		}
	}
}

func TestUserJoinBudgetCentrifugoReconnectLoop(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	member := joinMember(t, ts, a, "presence-x", "member")
	ctok := hs256(a.Secret, `{"sub":"u"}`)
	stok := hs256(a.Secret, `{"sub":"u","channel":"presence-x"}`)
	// A connection of u that stays: the loop's are then not the user's
	// first on the node, and take nothing of its sign-in budget.
	anchor, _ := cfRound(t, ts, cfConnect(ctok), 1)
	defer anchor.Conn.Close()
	ok := 0
	start := time.Now()
	for range loopRounds {
		c, r := cfRound(t, ts, cfConnect(ctok)+"\n"+cfSubscribe(2, "presence-x", stok), 2)
		switch {
		case strings.Contains(r[1], `"subscribe":{`):
			ok++
		case !strings.Contains(r[1], tooManyRequests):
			t.Fatalf("subscribe answered %s", r[1])
		}
		c.Conn.Close()
	}
	withinBudget(t, "centrifugo joins", ok, time.Since(start))
	// The budget is the user's, whichever protocol it joins with.
	if pusherJoin(t, ts, a, "presence-x", "u") {
		t.Error("a Pusher join of the same user was allowed")
	}
	// A join while the previous round's leave is under way is no news.
	if added, removed := memberEvents(member); added > ok || removed != added {
		t.Errorf("member heard %d added, %d removed for %d joins", added, removed, ok)
	}
	// Another user is not held by it.
	vc, r := cfRound(t, ts, cfConnect(hs256(a.Secret, `{"sub":"v"}`))+"\n"+cfSubscribe(2, "presence-x", hs256(a.Secret, `{"sub":"v","channel":"presence-x"}`)), 2)
	defer vc.Conn.Close()
	if !strings.Contains(r[1], `"subscribe":{`) {
		t.Fatalf("another user's join answered %s", r[1])
	}
	member.Expect("pusher_internal:member_added")
}

func TestUserJoinBudgetPusherReconnectLoop(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	member := joinMember(t, ts, a, "presence-x", "member")
	ok := 0
	start := time.Now()
	for range loopRounds {
		if pusherJoin(t, ts, a, "presence-x", "u") {
			ok++
		}
	}
	withinBudget(t, "pusher joins", ok, time.Since(start))
	c, r := cfRound(t, ts, cfConnect(hs256(a.Secret, `{"sub":"u"}`))+"\n"+cfSubscribe(2, "presence-x", hs256(a.Secret, `{"sub":"u","channel":"presence-x"}`)), 2)
	c.Conn.Close()
	if !strings.Contains(r[1], tooManyRequests) {
		t.Errorf("a Centrifugo join of the same user answered %s", r[1])
	}
	if added, removed := memberEvents(member); added > ok || removed != added {
		t.Errorf("member heard %d added, %d removed for %d joins", added, removed, ok)
	}
	if !pusherJoin(t, ts, a, "presence-x", "v") {
		t.Error("another user was refused")
	}
}

// A page that joins its presence channels together, in several tabs and
// over both protocols, stays within the user's burst.
func TestUserJoinBudgetAllowsAPage(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	const channels = 10
	for tab := range 4 {
		c, sid := connect(t, ts, a.Key)
		cd := `{"user_id":"p"}`
		for i := range channels {
			ch := fmt.Sprintf("presence-%d", i)
			c.Subscribe(ch, channelToken(a, sid, ch, cd), cd)
		}
		for range channels {
			m := c.Read()
			if m.Event != "pusher_internal:subscription_succeeded" {
				t.Fatalf("tab %d: %s %s", tab, m.Event, m.Data)
			}
		}
	}
	frame := cfConnect(hs256(a.Secret, `{"sub":"p"}`))
	for i := range channels {
		ch := fmt.Sprintf("presence-%d", i)
		frame += "\n" + cfSubscribe(i+2, ch, hs256(a.Secret, `{"sub":"p","channel":"`+ch+`"}`))
	}
	c, r := cfRound(t, ts, frame, channels+1)
	defer c.Conn.Close()
	for _, reply := range r[1:] {
		if !strings.Contains(reply, `"subscribe":{`) {
			t.Fatalf("centrifugo tab: %s", reply)
		}
	}
}

func watcherOf(t *testing.T, ts *testServer, a apps.App, id string) *wsClient {
	t.Helper()
	w, sid := connect(t, ts, a.Key)
	ud := `{"id":"w","watchlist":["` + id + `"]}`
	w.Send(map[string]any{"event": "pusher:signin", "data": map[string]string{
		"auth": auth.Token(a.Key, a.Secret, auth.UserString(sid, ud)), "user_data": ud}})
	w.Expect("pusher:signin_success")
	w.Expect("pusher_internal:watchlist_events") // the first list: offline
	return w
}

func TestSigninBudgetCentrifugoConnectLoop(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	w := watcherOf(t, ts, a, "u")
	tok := hs256(a.Secret, `{"sub":"u"}`)
	ok := 0
	start := time.Now()
	for range loopRounds {
		c, r := cfRound(t, ts, cfConnect(tok), 1)
		switch {
		case strings.Contains(r[0], `"connect":{`):
			ok++
		case !strings.Contains(r[0], tooManyRequests):
			t.Fatalf("connect answered %s", r[0])
		}
		c.Conn.Close()
	}
	elapsed := time.Since(start)
	signinsWithinBudget(t, "centrifugo sign-ins", ok, watchlistChanges(t, w), elapsed)
	c, r := cfRound(t, ts, cfConnect(hs256(a.Secret, `{"sub":"v"}`)), 1)
	c.Conn.Close()
	if !strings.Contains(r[0], `"connect":{`) {
		t.Errorf("another user's connect answered %s", r[0])
	}
}

func TestSigninBudgetPusherSigninLoop(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	w := watcherOf(t, ts, a, "u")
	signin := func(id string) bool {
		c, sid := connect(t, ts, a.Key)
		defer c.Conn.Close()
		ud := `{"id":"` + id + `"}`
		c.Send(map[string]any{"event": "pusher:signin", "data": map[string]string{
			"auth": auth.Token(a.Key, a.Secret, auth.UserString(sid, ud)), "user_data": ud}})
		for {
			m := c.Read()
			switch m.Event {
			case "pusher:signin_success":
				return true
			case "pusher:error":
				code, msg := errorData(t, m)
				if code == nil || *code != 4009 || !strings.Contains(msg, "rate limit") {
					t.Fatalf("sign-in refused with %s", m.Data)
				}
				c.Alive() // the connection stays
				return false
			}
		}
	}
	ok := 0
	start := time.Now()
	for range loopRounds {
		if signin("u") {
			ok++
		}
	}
	elapsed := time.Since(start)
	signinsWithinBudget(t, "pusher sign-ins", ok, watchlistChanges(t, w), elapsed)
	if !signin("v") {
		t.Error("another user was refused")
	}
}
