import { duration } from './common.ts';
import { boolean, object, optional, string, type TypeOf } from './schema.ts';

const CRON_FIELD = '[0-9A-Za-z*/,?#-]+';
/** Five fields or a macro; CEL checks the shape, the operator checks the full grammar (ranges, names). */
export const CRON_SHAPE = String.raw`^(@(yearly|annually|monthly|weekly|daily|hourly)|(${CRON_FIELD}\s+){4}${CRON_FIELD})$`;

/** The fields of a trigger, for objects that are a trigger plus settings of their own (a restore drill). */
export const triggerFields = {
  cron: optional(
    string({
      description: 'Standard 5-field cron expression (minute hour day-of-month month day-of-week) or @daily etc.',
      maxLength: 128,
      rules: [
        {
          rule: `self.matches(r'${CRON_SHAPE}')`,
          message:
            'must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 2 * * *", or a macro such as @daily',
        },
      ],
    }),
  ),
  every: optional(duration('Run at this interval, counted from anchor (e.g. 14d for "every other week").')),
  anchor: optional(
    string({
      format: 'date-time',
      description: 'RFC 3339 time the interval is counted from; defaults to the policy creation time.',
    }),
  ),
};

export const triggerRules = [
  { rule: 'has(self.cron) != has(self.every)', message: 'set exactly one of cron or every' },
  {
    rule: '!has(self.anchor) || has(self.every)',
    message: 'anchor only applies to an every interval',
    fieldPath: '.anchor',
    reason: 'FieldValueForbidden' as const,
  },
];

/** When runs are due: a cron expression, or a fixed interval counted from an anchor time. */
export const trigger = (description: string) => object(triggerFields, { description, rules: triggerRules });

export const schedule = object(
  {
    full: trigger('When full backups (a new chain) run.'),
    incremental: optional(trigger('When incremental backups (reusing the current chain) run.')),
    timeZone: optional(
      string({
        description: 'IANA time zone for cron expressions and the window, e.g. Europe/Berlin. Default UTC.',
        default: 'UTC',
        maxLength: 64,
        rules: [
          {
            rule: String.raw`self.matches(r'^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$')`,
            message: 'must be an IANA time zone name such as UTC or Europe/Berlin',
          },
        ],
      }),
    ),
    window: optional(
      object(
        {
          start: string({
            description: 'Local start time HH:MM in timeZone.',
            maxLength: 5,
            rules: [
              {
                rule: `self.matches(r'^([01][0-9]|2[0-3]):[0-5][0-9]$')`,
                message: 'must be a time of day HH:MM between 00:00 and 23:59',
              },
            ],
          }),
          duration: duration('How long the window stays open.'),
        },
        {
          description: 'Runs only start inside this daily window; a run due outside it waits for the next opening.',
        },
      ),
    ),
    suspend: optional(
      boolean({
        description: 'Stop starting new runs; a running backup is never interrupted.',
        default: false,
      }),
    ),
  },
  { description: 'When backups run. The operator schedules runs itself (not CronJobs).' },
);

export type Trigger = TypeOf<ReturnType<typeof trigger>>;
export type Schedule = TypeOf<typeof schedule>;
