package graph

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustOrder(t *testing.T, deps map[string][]string) []string {
	t.Helper()
	got, err := BuildOrder(deps)
	if err != nil {
		t.Fatalf("BuildOrder: %v", err)
	}
	return got
}

func TestChain(t *testing.T) {
	got := mustOrder(t, map[string][]string{"app": {"lib"}, "lib": {"core"}})
	want := []string{"core", "lib", "app"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSmallestReadyPackageFirst(t *testing.T) {
	deps := map[string][]string{
		"web":    {"api", "ui"},
		"api":    {"db", "auth"},
		"ui":     {"design"},
		"auth":   {"crypto"},
		"db":     nil,
		"zlib":   nil,
		"design": nil,
		"crypto": nil,
	}
	want := []string{"crypto", "auth", "db", "api", "design", "ui", "web", "zlib"}
	for i := 0; i < 20; i++ { // map iteration order varies between runs
		if got := mustOrder(t, deps); !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: got %v, want %v", i, got, want)
		}
	}
}

func TestDependenciesOnlyNamedAsDependencies(t *testing.T) {
	got := mustOrder(t, map[string][]string{"b": {"a", "c"}, "d": {"c"}})
	want := []string{"a", "c", "b", "d"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDuplicateEdgesAndDiamond(t *testing.T) {
	got := mustOrder(t, map[string][]string{
		"top":   {"left", "right", "left"},
		"left":  {"base"},
		"right": {"base", "base"},
	})
	want := []string{"base", "left", "right", "top"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestEmpty(t *testing.T) {
	if got := mustOrder(t, map[string][]string{}); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
}

func checkCycle(t *testing.T, deps map[string][]string, members ...string) {
	t.Helper()
	_, err := BuildOrder(deps)
	var ce *CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("BuildOrder = %v, want a *CycleError", err)
	}
	c := ce.Cycle
	if len(c) < 2 || c[0] != c[len(c)-1] {
		t.Fatalf("cycle %v must start and end with the same package", c)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(c); i++ {
		if seen[c[i]] {
			t.Fatalf("cycle %v visits %s twice", c, c[i])
		}
		seen[c[i]] = true
		edge := false
		for _, d := range deps[c[i]] {
			edge = edge || d == c[i+1]
		}
		if !edge {
			t.Fatalf("cycle %v: %s does not depend on %s", c, c[i], c[i+1])
		}
	}
	for _, m := range members {
		if !seen[m] {
			t.Fatalf("cycle %v should contain %s", c, m)
		}
	}
	if !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("error text %q", err.Error())
	}
}

func TestCycles(t *testing.T) {
	checkCycle(t, map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a", "b", "c")
	checkCycle(t, map[string][]string{"self": {"self"}}, "self")
	checkCycle(t, map[string][]string{
		"app": {"lib", "log"}, "lib": {"util"}, "util": {"lib"}, "log": nil,
	}, "lib", "util")
	checkCycle(t, map[string][]string{
		"a": {"b"}, "b": {"c", "d"}, "c": nil, "d": {"e"}, "e": {"b"}, "z": {"a"},
	}, "b", "d", "e")
}
