// Money and time as the shop sees them: its currency's own decimals (JPY none, KWD three) and
// its timezone. Amounts arrive as exact decimal strings and are formatted as strings, never
// turned into binary floats.
let shopTimezone = "UTC";

export function setTimezone(tz: string): void {
  shopTimezone = tz;
}

const moneyFormats = new Map<string, Intl.NumberFormat>();

export function money(amount: string | null | undefined, currency: string): string {
  if (amount === null || amount === undefined) return "—";
  let format = moneyFormats.get(currency);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    moneyFormats.set(currency, format);
  }
  // Intl formats a decimal string exactly (no float rounding on the way).
  return format.format(amount as unknown as number);
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: shopTimezone,
  }).format(new Date(iso));
}

export function day(isoDate: string): string {
  return new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" }).format(
    new Date(`${isoDate}T00:00:00Z`),
  );
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

export function since(iso: string | null | undefined): string {
  if (!iso) return "—";
  return duration((Date.now() - new Date(iso).getTime()) / 1000);
}

export function percent(rate: string): string {
  // Rates are percents as decimal strings ("5", "2.5"): shown as they are, with a % sign.
  return `${rate}%`;
}

/** The calendar date (YYYY-MM-DD) in the shop's timezone, `daysAgo` days before now. */
export function shopDate(daysAgo = 0): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: shopTimezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(new Date(Date.now() - daysAgo * 86400_000));
  return parts; // en-CA formats as YYYY-MM-DD
}
