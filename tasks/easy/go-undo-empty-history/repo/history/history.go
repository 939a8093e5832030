// Package history keeps the undo/redo stacks of a document.
package history

// Edit is one reversible change to the document.
type Edit struct {
	Pos    int
	Insert string
	Delete string
}

// History is the undo/redo log of one document.
type History struct {
	done   []Edit
	undone []Edit
}

// Push records a new edit; it clears the redo stack.
func (h *History) Push(e Edit) {
	h.done = append(h.done, e)
	h.undone = nil
}

// Undo pops the last edit so the caller can revert it.
// ok is false when there is nothing to undo.
func (h *History) Undo() (e Edit, ok bool) {
	e = h.done[len(h.done)-1]
	h.done = h.done[:len(h.done)-1]
	h.undone = append(h.undone, e)
	return e, true
}

// Redo re-applies the last undone edit.
// ok is false when there is nothing to redo.
func (h *History) Redo() (e Edit, ok bool) {
	if len(h.undone) == 0 {
		return Edit{}, false
	}
	e = h.undone[len(h.undone)-1]
	h.undone = h.undone[:len(h.undone)-1]
	h.done = append(h.done, e)
	return e, true
}

// CanUndo reports whether Undo would do anything.
func (h *History) CanUndo() bool { return len(h.done) > 0 }

// CanRedo reports whether Redo would do anything.
func (h *History) CanRedo() bool { return len(h.undone) > 0 }
