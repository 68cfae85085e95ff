// Keyboard moves for the board (dnd-kit coordinate getter): Up/Down step through the cards of
// the column (dnd-kit's sortable getter, columns left out so a step never lands on the card's own
// column), Left/Right jump to the neighbouring column, next to the card at the same height, or
// into the column itself when it is empty.
import type { DroppableContainer, KeyboardCoordinateGetter } from '@dnd-kit/core';
import { sortableKeyboardCoordinates } from '@dnd-kit/sortable';
import { STATUSES, type TaskStatus } from '@/features/tasks/types';
import { findColumn, type Columns } from './reorder';

/** The index of the top closest to `top`, or -1 for none. */
export function nearestIndex(tops: readonly number[], top: number): number {
  let best = -1;
  let bestDistance = Infinity;
  tops.forEach((t, i) => {
    const d = Math.abs(t - top);
    if (d < bestDistance) {
      best = i;
      bestDistance = d;
    }
  });
  return best;
}

/** The column left or right of `from`, or null at the edge. */
export function sideColumn(from: TaskStatus, direction: 'left' | 'right'): TaskStatus | null {
  const i = STATUSES.indexOf(from) + (direction === 'right' ? 1 : -1);
  return STATUSES[i] ?? null;
}

export function boardKeyboardCoordinates(
  getColumns: () => Columns | null,
  isColumn: (id: unknown) => boolean,
  columnDroppableId: (status: TaskStatus) => string,
): KeyboardCoordinateGetter {
  return (event, args) => {
    const { context } = args;
    const { active, collisionRect, droppableRects, droppableContainers } = context;
    if (event.code === 'ArrowLeft' || event.code === 'ArrowRight') {
      event.preventDefault();
      const columns = getColumns();
      if (!active || !collisionRect || !columns) return undefined;
      const from = findColumn(columns, String(active.id));
      const to = from && sideColumn(from, event.code === 'ArrowRight' ? 'right' : 'left');
      if (!to) return undefined;
      const cards = columns[to].flatMap((id) => {
        const r = droppableRects.get(id);
        return r ? [r] : [];
      });
      const i = nearestIndex(
        cards.map((r) => r.top),
        collisionRect.top,
      );
      const card = cards[i];
      if (card) return { x: card.left, y: card.top };
      const col = droppableRects.get(columnDroppableId(to));
      return col ? { x: col.left + 8, y: col.top + 40 } : undefined;
    }
    // Up and Down: dnd-kit's own getter, among the cards only.
    const cardsOnly = {
      getEnabled: () => droppableContainers.getEnabled().filter((c: DroppableContainer) => !isColumn(c.id)),
      get: (id: Parameters<typeof droppableContainers.get>[0]) => droppableContainers.get(id),
    } as unknown as typeof droppableContainers;
    return sortableKeyboardCoordinates(event, { ...args, context: { ...context, droppableContainers: cardsOnly } });
  };
}
