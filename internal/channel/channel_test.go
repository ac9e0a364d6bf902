package channel

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/apps"
)

func TestParseChannel(t *testing.T) {
	const limit = apps.DefaultMaxChannelNameLength
	x := func(n int) string { return strings.Repeat("x", n) }
	id128 := strings.Repeat("u", 128)

	valid := []struct {
		name  string
		kind  Kind
		cache bool
	}{
		{"my-channel", Public, false},
		{"test_-=@,.;channel", Public, false},
		{"-azAZ9_=@,.;", Public, false},
		{"0", Public, false},
		{"cache-prices", Public, true},
		{"cache-", Public, true},
		{"cachefoo", Public, false},
		{"Cache-foo", Public, false},
		{"encrypted-foo", Public, false},
		{"private_foo", Public, false},
		{"x-private-foo", Public, false},
		{"private-foo", Private, false},
		{"private-", Private, false},
		{"Private-foo", Public, false},
		{"private-cache-foo", Private, true},
		{"private-cachefoo", Private, false},
		{"private-encrypted-foo", Encrypted, false},
		{"private-encrypted-", Encrypted, false},
		{"private-encrypted-cache-foo", Encrypted, true},
		{"private-encryptedfoo", Private, false},
		{"presence-foo", Presence, false},
		{"presence-cache-foo", Presence, true},
		{"presence-encrypted-foo", Presence, false},
		{"presence-private-foo", Presence, false},
		{"#server-to-user-42", ServerToUser, false},
		{"#server-to-user-cache-42", ServerToUser, false},
		{"#server-to-user-a_b=c@d,e.f;g-h", ServerToUser, false},
		{x(limit), Public, false},
		{"private-" + x(limit-len("private-")), Private, false},
		{"presence-cache-" + x(limit-len("presence-cache-")), Presence, true},
		// A user id of the maximum length still names a channel its user can
		// join, although the name is longer than limit.
		{ServerToUserPrefix + id128, ServerToUser, false},
	}
	for _, tt := range valid {
		c, err := Parse(tt.name, limit)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.name, err)
			continue
		}
		if c.Name != tt.name || c.Kind != tt.kind || c.Cache != tt.cache {
			t.Errorf("Parse(%q) = %+v, want kind %d cache %v", tt.name, c, tt.kind, tt.cache)
		}
	}

	invalid := []struct {
		name  string
		limit int
		want  error
	}{
		{"", limit, ErrChannelEmpty},
		{x(limit + 1), limit, ErrChannelLength},
		{"private-" + x(limit+1-len("private-")), limit, ErrChannelLength},
		{x(165), 164, ErrChannelLength},
		{"a", 0, ErrChannelLength},
		{"abc$", limit, ErrChannelCharset},
		{"a b", limit, ErrChannelCharset},
		{" a", limit, ErrChannelCharset},
		{"a\n", limit, ErrChannelCharset},
		{"a\x00", limit, ErrChannelCharset},
		{"test_channel:", limit, ErrChannelCharset},
		{":test_channel", limit, ErrChannelCharset},
		{"a/b", limit, ErrChannelCharset},
		{"a+b", limit, ErrChannelCharset},
		{"a%20b", limit, ErrChannelCharset},
		{"a*", limit, ErrChannelCharset},
		{"a\"b", limit, ErrChannelCharset},
		{"ünicode", limit, ErrChannelCharset},
		{"日本", limit, ErrChannelCharset},
		{"private-\xff", limit, ErrChannelCharset},
		{"a#b", limit, ErrChannelCharset},
		{"#", limit, ErrChannelCharset},
		{"#foo", limit, ErrChannelCharset},
		{"#server-to-user", limit, ErrChannelCharset},
		{"#server-to-user-", limit, ErrChannelCharset},
		{"#server-to-user-a#b", limit, ErrChannelCharset},
		{"#server-to-user-a b", limit, ErrChannelCharset},
		{"#server-to-user-ü", limit, ErrChannelCharset},
		{"##server-to-user-1", limit, ErrChannelCharset},
		{"#Server-to-user-1", limit, ErrChannelCharset},
		{"#server_to_user-1", limit, ErrChannelCharset},
		{"private-#server-to-user-1", limit, ErrChannelCharset},
		{ServerToUserPrefix + id128 + "u", limit, ErrChannelLength},
	}
	for _, tt := range invalid {
		c, err := Parse(tt.name, tt.limit)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%.40q, %d) = %+v, %v; want %v", tt.name, tt.limit, c, err, tt.want)
		}
		if err != nil && c != (Channel{}) {
			t.Errorf("Parse(%.40q) returned %+v with its error", tt.name, c)
		}
	}
}

// TestServerToUserChannelOfEveryValidUser pins the link between sign-in and
// the user's own channel: pusher-js subscribes to it after every sign-in.
func TestServerToUserChannelOfEveryValidUser(t *testing.T) {
	for _, id := range []string{"1", "-azAZ9_=@,.;", strings.Repeat("7", 112), strings.Repeat("7", 113), strings.Repeat("7", 128)} {
		if !ValidUserID(id) {
			t.Fatalf("ValidUserID(%.20q) = false", id)
		}
		c, err := Parse(ServerToUserPrefix+id, apps.DefaultMaxChannelNameLength)
		if err != nil || c.Kind != ServerToUser {
			t.Errorf("user %.20q… (%d chars) may sign in but not subscribe to its channel: %+v, %v", id, len(id), c, err)
		}
	}
}

func TestChannelPermissions(t *testing.T) {
	tests := []struct {
		kind                      Kind
		needsAuth, allowsClientEv bool
	}{
		{Public, false, false},
		{Private, true, true},
		{Presence, true, true},
		{Encrypted, true, false},
		{ServerToUser, false, false},
	}
	for _, tt := range tests {
		for _, cache := range []bool{false, true} {
			c := Channel{Name: "x", Kind: tt.kind, Cache: cache}
			if got := c.NeedsAuth(); got != tt.needsAuth {
				t.Errorf("kind %d cache %v: NeedsAuth = %v, want %v", tt.kind, cache, got, tt.needsAuth)
			}
			if got := c.AllowsClientEvents(); got != tt.allowsClientEv {
				t.Errorf("kind %d cache %v: AllowsClientEvents = %v, want %v", tt.kind, cache, got, tt.allowsClientEv)
			}
		}
	}
}

func TestValidUserID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"1", true},
		{"12345", true},
		{"fred", true},
		{"-azAZ9_=@,.;", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 200), false},
		{"a b", false},
		{"a#b", false},
		{"a:b", false},
		{"a/b", false},
		{"ą§¶™€łü€ß£", false},
		{"a\x00", false},
		{"\xff", false},
		{`"1"`, false},
	}
	for _, tt := range tests {
		if got := ValidUserID(tt.id); got != tt.want {
			t.Errorf("ValidUserID(%.20q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// nameRE is the published channel-name alphabet, an oracle independent of
// validNameChars.
var nameRE = regexp.MustCompile(`^[-a-zA-Z0-9_=@,.;]+$`)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "a", "my-channel", "cache-x", "private-x", "private-cache-x", "private-encrypted-x",
		"private-encrypted-cache-x", "presence-x", "presence-cache-x", "#server-to-user-1",
		"#server-to-user-", "#x", "a b", "abc$", "ünicode", "\xff", strings.Repeat("x", 201),
		"-azAZ9_=@,.;", ServerToUserPrefix + strings.Repeat("u", 128), ServerToUserPrefix + strings.Repeat("u", 129),
	} {
		f.Add(s, uint8(200))
	}
	f.Add("x", uint8(0))
	f.Add(strings.Repeat("y", 165), uint8(164))
	f.Fuzz(func(t *testing.T, name string, maxLen uint8) {
		limit := int(maxLen)
		c, err := Parse(name, limit)

		id, isUser := strings.CutPrefix(name, ServerToUserPrefix)
		var ok bool
		if isUser {
			ok = len(id) <= 128 && nameRE.MatchString(id)
		} else {
			ok = len(name) <= limit && nameRE.MatchString(name)
		}
		if ok != (err == nil) {
			t.Fatalf("Parse(%q, %d) = %+v, %v; rules say accepted=%v", name, limit, c, err, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrChannelEmpty) && !errors.Is(err, ErrChannelLength) && !errors.Is(err, ErrChannelCharset) {
				t.Fatalf("Parse(%q): unexpected error %v", name, err)
			}
			if c != (Channel{}) {
				t.Fatalf("Parse(%q) returned %+v with its error", name, c)
			}
			return
		}
		if c.Name != name {
			t.Fatalf("Name = %q, want %q", c.Name, name)
		}
		// The kind and cache flag follow from the prefixes alone.
		wantKind, wantCache := Public, strings.HasPrefix(name, "cache-")
		switch {
		case isUser:
			wantKind, wantCache = ServerToUser, false
		case strings.HasPrefix(name, "private-encrypted-"):
			wantKind, wantCache = Encrypted, strings.HasPrefix(name, "private-encrypted-cache-")
		case strings.HasPrefix(name, "private-"):
			wantKind, wantCache = Private, strings.HasPrefix(name, "private-cache-")
		case strings.HasPrefix(name, "presence-"):
			wantKind, wantCache = Presence, strings.HasPrefix(name, "presence-cache-")
		}
		if c.Kind != wantKind || c.Cache != wantCache {
			t.Fatalf("Parse(%q) = %+v, want kind %d cache %v", name, c, wantKind, wantCache)
		}
	})
}

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kind       Kind
		needsToken bool
		ok         bool
	}{
		{"news", Public, false, true},
		{"$news", Public, true, true},
		{"private-a", Private, true, true},
		{"presence-a", Presence, true, true},
		{"private-encrypted-a", Encrypted, true, true},
		{"$private-a", 0, true, false},
		{"$cache-a", 0, true, false},
		{"$", 0, true, false},
		{"$$a", 0, true, false},
		{"ns:a", 0, false, false},
		{"$" + strings.Repeat("a", 200), 0, true, false}, // the $ counts towards the length
	} {
		ch, needs, err := ParseToken(tc.name, 200)
		if (err == nil) != tc.ok || needs != tc.needsToken || (tc.ok && (ch.Kind != tc.kind || ch.Name != tc.name)) {
			t.Errorf("ParseToken(%q) = %+v, %v, %v", tc.name, ch, needs, err)
		}
	}
}
