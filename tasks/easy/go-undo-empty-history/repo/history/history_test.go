package history

import "testing"

func TestUndoOnEmptyHistory(t *testing.T) {
	var h History
	e, ok := h.Undo()
	if ok || e != (Edit{}) {
		t.Fatalf("Undo on empty history = %v, %v; want zero edit, false", e, ok)
	}
	if h.CanUndo() || h.CanRedo() {
		t.Fatal("empty history must stay empty after a no-op Undo")
	}
}

func TestUndoPastTheBeginning(t *testing.T) {
	var h History
	h.Push(Edit{Pos: 0, Insert: "a"})
	h.Push(Edit{Pos: 1, Insert: "b"})
	if e, ok := h.Undo(); !ok || e.Insert != "b" {
		t.Fatalf("first undo = %v, %v", e, ok)
	}
	if e, ok := h.Undo(); !ok || e.Insert != "a" {
		t.Fatalf("second undo = %v, %v", e, ok)
	}
	if _, ok := h.Undo(); ok {
		t.Fatal("third undo must report nothing to undo")
	}
	// The no-op undo must not disturb the redo stack.
	if e, ok := h.Redo(); !ok || e.Insert != "a" {
		t.Fatalf("redo after no-op undo = %v, %v; want a", e, ok)
	}
	if e, ok := h.Redo(); !ok || e.Insert != "b" {
		t.Fatalf("second redo = %v, %v; want b", e, ok)
	}
	if _, ok := h.Redo(); ok {
		t.Fatal("nothing left to redo")
	}
}

func TestPushClearsRedo(t *testing.T) {
	var h History
	h.Push(Edit{Insert: "x"})
	h.Undo()
	h.Push(Edit{Insert: "y"})
	if h.CanRedo() {
		t.Fatal("a new edit must clear the redo stack")
	}
	if e, ok := h.Undo(); !ok || e.Insert != "y" {
		t.Fatalf("undo = %v, %v; want y", e, ok)
	}
}
