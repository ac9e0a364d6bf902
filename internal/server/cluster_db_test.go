package server

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

// Redis's pub/sub ignores the database number: two deployments on one
// Redis told apart only by the database in their URLs hear each other's
// events. A node whose URL selects a database other than 0 with the
// default prefix says so at start; one with a prefix of its own is apart
// and says nothing.
func TestClusterDatabaseWithoutPrefixWarns(t *testing.T) {
	rs := redistest.Start(t)
	a := testApp("1")
	node := func(db, id, prefix string) (*testServer, *syncBuffer) {
		var logs syncBuffer
		cfg := config.Config{Apps: []apps.App{a}}
		cfg.Redis = config.Redis{URL: "redis://" + rs.Addr() + "/" + db, NodeID: id, Prefix: prefix, NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
		ts := startServerLog(t, cfg, options{}, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
		waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
		return ts, &logs
	}
	const warning = "redis pub/sub is shared by every database"
	n0, l0 := node("0", "a", "")
	n1, l1 := node("1", "b", "")
	_, l2 := node("2", "c", "other")
	if strings.Contains(l0.String(), warning) || strings.Contains(l2.String(), warning) {
		t.Fatalf("warned for database 0 or a prefix of its own:\n%s\n%s", l0, l2)
	}
	if !strings.Contains(l1.String(), warning) {
		t.Fatalf("no warning for database 1 with the default prefix:\n%s", l1)
	}
	// What the warning is about.
	c, _ := connect(t, n1, a.Key)
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	publish(t, n0, "1", "news", "crossed", `"x"`)
	c.Expect("crossed")
}
