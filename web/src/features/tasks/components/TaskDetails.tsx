// The task details panel (placeholder until task details land).
export function TaskDetails({ taskId, projectId, onClose }: { taskId: string; projectId: string; onClose: () => void }) {
  return (
    <div data-task={taskId} data-project={projectId}>
      <button type="button" onClick={onClose}>
        Close
      </button>
    </div>
  );
}
