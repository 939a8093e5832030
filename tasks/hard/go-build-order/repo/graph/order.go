// Package graph computes the order in which monorepo packages are built.
package graph

import (
	"fmt"
	"strings"
)

// CycleError reports a dependency cycle. Cycle lists the packages along
// the cycle and repeats the first one at the end: [a b c a] means a
// depends on b, b on c and c on a.
type CycleError struct {
	Cycle []string
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("dependency cycle: %s", strings.Join(e.Cycle, " -> "))
}

// BuildOrder returns every package named in deps (as a key or as a
// dependency) so that each package comes after all of its dependencies.
// When several packages could come next, the alphabetically smallest one
// goes first, so the order is the same on every run. A cycle (including a
// package depending on itself) is a *CycleError.
func BuildOrder(deps map[string][]string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(pkg string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		for _, d := range deps[pkg] {
			visit(d)
		}
		order = append(order, pkg)
	}
	for pkg := range deps {
		visit(pkg)
	}
	return order, nil
}
