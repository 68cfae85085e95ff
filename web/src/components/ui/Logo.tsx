// The Trellis wordmark used in page headers.
export function Logo({ className = '' }: { className?: string }) {
  return (
    <span className={`inline-flex items-center gap-2 font-semibold tracking-tight text-zinc-900 ${className}`}>
      <svg aria-hidden="true" viewBox="0 0 32 32" className="size-6">
        <rect width="32" height="32" rx="7" className="fill-indigo-600" />
        <path
          d="M9 9h14M16 9v14M11 16h10M11 23h10"
          className="stroke-white"
          strokeWidth="2.5"
          strokeLinecap="round"
          fill="none"
        />
      </svg>
      Trellis
    </span>
  );
}
