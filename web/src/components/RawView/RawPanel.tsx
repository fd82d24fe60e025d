/** The exact JSON sent and received, collapsible. */
export function RawPanel({ request, response, path }: { request: unknown; response: unknown; path: string }) {
  return (
    <details className="box raw" data-testid="raw">
      <summary>
        Raw request / response <span className="muted">POST {path}</span>
      </summary>
      <div className="raw-grid">
        <div>
          <div className="raw-head">
            request
            <CopyButton text={JSON.stringify(request, null, 2)} />
          </div>
          <pre>{JSON.stringify(request, null, 2)}</pre>
        </div>
        <div>
          <div className="raw-head">
            response
            <CopyButton text={JSON.stringify(response, null, 2)} />
          </div>
          <pre>{response === null ? "(none yet)" : JSON.stringify(response, null, 2)}</pre>
        </div>
      </div>
    </details>
  );
}

function CopyButton({ text }: { text: string }) {
  return (
    <button type="button" className="link" onClick={() => void navigator.clipboard?.writeText(text)}>
      copy
    </button>
  );
}
