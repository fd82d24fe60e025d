/** An in-app link: a plain click navigates without reloading; a modified or middle click does what
 * the browser does with a link (new tab, new window), as the href promises. */
import type { AnchorHTMLAttributes } from "react";
import { navigate } from "../../hooks/useLocation";

type Props = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, "href" | "onClick"> & { href: string; "data-testid"?: string };

export function Link({ href, children, ...rest }: Props) {
  return (
    <a {...rest} href={href} onClick={(e) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || e.button !== 0) return;
      e.preventDefault();
      navigate(href);
    }}>
      {children}
    </a>
  );
}
