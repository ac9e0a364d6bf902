package server

import "testing"

// TestGoroutineTransport runs the protocol tests again over the portable
// goroutine-per-connection transport; every other test uses the default
// (epoll on Linux).
func TestGoroutineTransport(t *testing.T) {
	testTransport = "goroutine"
	defer func() { testTransport = "" }()
	for name, fn := range map[string]func(*testing.T){
		"ConnectionRefusals":      TestConnectionRefusals,
		"PingPongAndBadFrames":    TestPingPongAndBadFrames,
		"OversizedMessage":        TestOversizedMessage,
		"PublicChannelDelivery":   TestPublicChannelDelivery,
		"PresenceMembersAreUsers": TestPresenceMembersAreUsers,
		"ClientEvents":            TestClientEvents,
		"SigninWatchlist":         TestSigninWatchlistAndServerToUser,
		"PongTimeout":             TestPongTimeoutCloses4201,
		"Shutdown":                TestShutdownAsksClientsToReconnect,
		"SlowClientIsolated":      TestSlowClientIsolated,
		"UpgradesBypassNetHTTP":   TestUpgradesBypassNetHTTP,
	} {
		t.Run(name, fn)
	}
}
