package semver

import (
	"math/rand"
	"sort"
	"testing"
)

func mustParse(t *testing.T, s string) Version {
	t.Helper()
	v, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return v
}

func cmp(t *testing.T, a, b string) int {
	t.Helper()
	return Compare(mustParse(t, a), mustParse(t, b))
}

// Strictly increasing precedence.
var ordered = []string{
	"0.0.1",
	"0.9.0",
	"0.10.0",
	"1.0.0-0",
	"1.0.0-0.0",
	"1.0.0-1",
	"1.0.0-2",
	"1.0.0-10",
	"1.0.0-99999999999999999999",
	"1.0.0-0A",
	"1.0.0-alpha",
	"1.0.0-alpha.1",
	"1.0.0-alpha.2",
	"1.0.0-alpha.10",
	"1.0.0-alpha.10.a",
	"1.0.0-alpha.beta",
	"1.0.0-alpha-2",
	"1.0.0-alphaa",
	"1.0.0-beta",
	"1.0.0-beta.2",
	"1.0.0-beta.11",
	"1.0.0-rc.1",
	"1.0.0-rc1",
	"1.0.0-rc10",
	"1.0.0-rc9",
	"1.0.0",
	"1.0.1-alpha",
	"1.0.1",
	"1.9.0",
	"1.10.0",
	"2.0.0",
	"10.0.0",
	"18446744073709551615.0.0",
}

func TestPrecedenceChain(t *testing.T) {
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := cmp(t, ordered[i], ordered[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestSortMatchesSpec(t *testing.T) {
	shuffled := append([]string(nil), ordered...)
	rand.New(rand.NewSource(7)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	sort.Slice(shuffled, func(i, j int) bool { return cmp(t, shuffled[i], shuffled[j]) < 0 })
	for i := range ordered {
		if shuffled[i] != ordered[i] {
			t.Fatalf("sorted[%d] = %s, want %s", i, shuffled[i], ordered[i])
		}
	}
}

func TestBuildMetadataIsIgnored(t *testing.T) {
	equal := [][2]string{
		{"1.0.0+build.1", "1.0.0+build.2"},
		{"1.0.0+20130313144700", "1.0.0"},
		{"1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"},
		{"1.0.0-alpha+001", "1.0.0-alpha+zzz"},
	}
	for _, p := range equal {
		if got := cmp(t, p[0], p[1]); got != 0 {
			t.Errorf("Compare(%s, %s) = %d, want 0", p[0], p[1], got)
		}
	}
	if got := cmp(t, "1.0.0-alpha+999", "1.0.0-alpha.1+1"); got != -1 {
		t.Errorf("build metadata must not affect pre-release order, got %d", got)
	}
}

func TestParseKeepsParts(t *testing.T) {
	v := mustParse(t, "1.2.3-rc.1-x+build.5-y.007")
	if v.Major != 1 || v.Minor != 2 || v.Patch != 3 || v.Pre != "rc.1-x" || v.Build != "build.5-y.007" {
		t.Fatalf("Parse = %+v", v)
	}
	if v.String() != "1.2.3-rc.1-x+build.5-y.007" {
		t.Fatalf("String() = %s", v.String())
	}
	v = mustParse(t, "0.0.0+a-b")
	if v.Pre != "" || v.Build != "a-b" {
		t.Fatalf("a hyphen in build metadata is not a pre-release: %+v", v)
	}
}

func TestInvalidVersions(t *testing.T) {
	for _, s := range []string{
		"", "1", "1.2", "1.2.3.4", "v1.2.3", " 1.2.3", "1.2.3 ",
		"01.2.3", "1.02.3", "1.2.03", "1.2.3-01", "1.2.3-alpha.01",
		"1.2.3-", "1.2.3+", "1.2.3-+build", "1.2.3-alpha..1", "1.2.3+build..1",
		"1.2.3-alpha_1", "1.2.3+build!", "1.2.3-α", "-1.2.3", "1.-2.3", "1.2.+3",
		"18446744073709551616.0.0", "1.2.3+a+b",
	} {
		if v, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, v)
		}
	}
	for _, s := range []string{"0.0.0", "1.2.3-0", "1.2.3-0a", "1.2.3-00a", "1.2.3+001", "1.2.3----RC-SNAPSHOT.12.9.1--.12+788", "1.0.0-alpha.0valid"} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

func TestLatest(t *testing.T) {
	got, err := Latest([]string{"1.0.0-rc.1", "1.0.0", "1.0.0-rc.2", "0.9.9"})
	if err != nil || got != "1.0.0" {
		t.Fatalf("Latest = %q, %v", got, err)
	}
	got, err = Latest([]string{"2.0.0-beta.11", "2.0.0-beta.2"})
	if err != nil || got != "2.0.0-beta.11" {
		t.Fatalf("Latest = %q, %v", got, err)
	}
	if _, err := Latest([]string{"1.0.0", "1.0"}); err == nil {
		t.Fatal("Latest must reject invalid versions")
	}
}
