"""Engagement lifecycle as a state machine: terms, squad, activation, milestones and their tasks.

Lifecycle (API.md): Draft -> Active -> Completed, and Draft|Active -> Cancelled. Terms change
only in Draft, activation needs a squad, and every illegal transition raises IllegalTransition
and changes nothing. The key invariant: over the whole history, each milestone's
MilestoneCompleted is recorded at most once, and exactly when the milestone was completed by
hand or its last linked task completed while the engagement was not Cancelled.

Inputs are drawn as (raw, expected) pairs: `expected` is what the engagement must hold after
the command, or BAD when the command must be refused with InvalidValue. Money is checked
against an oracle that rounds half-even with integer arithmetic, and compared with `str` so
that the number of decimal places counts (Decimal's == ignores it).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from application.errors import ConcurrentWrite
from application.event_log import EventLog
from domain.engagement import Engagement, Terms
from domain.errors import IllegalTransition, InvalidValue
from tests.unit.support import MACHINE_SETTINGS, META, memory_log, replay

BAD = object()  # marks an input the domain must refuse
TENANT = UUID("00000000-0000-4000-8000-000000000001")
CUSTOMERS = (
    UUID("00000000-0000-4000-8000-0000000000c1"),
    UUID("00000000-0000-4000-8000-0000000000c2"),
)
SQUADS = (
    UUID("00000000-0000-4000-8000-0000000000f1"),
    UUID("00000000-0000-4000-8000-0000000000f2"),
)
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
DRAFT, ACTIVE, COMPLETED, CANCELLED = "Draft", "Active", "Completed", "Cancelled"
OPEN = "Open"
MINOR_UNITS = {"USD": 2, "EUR": 2, "JPY": 0, "BHD": 3}  # ISO 4217, written out
LIMIT = Decimal("1e15")

SCOPE = "contractTerms.scope"
MODEL = "contractTerms.pricing.model"
AMOUNT = "contractTerms.pricing.amount"
CURRENCY = "contractTerms.pricing.currency"
END_DATE = "contractTerms.timeline.endDate"
PROJECT = "projectId"

Illegal = tuple[str, str, str]  # (aggregate, action, state) of the expected IllegalTransition


def half_even(value: Decimal, currency: str) -> Any:
    """`value` rounded half-even to the currency's minor unit, or BAD when it must be refused
    (not finite, below zero before rounding, or 1e15 and more after it)."""
    if not value.is_finite() or value < 0:
        return BAD
    digits = MINOR_UNITS[currency]
    scaled = Fraction(value) * 10**digits
    whole = floor(scaled)
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    if Decimal(whole).scaleb(-digits) >= LIMIT:
        return BAD
    return Decimal(whole).scaleb(-digits)


def places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


def canon(value: Any) -> Any:
    """A comparable image of a state: Decimals keep their places, sets are sorted."""
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, (set, frozenset)):
        return ("set", sorted((canon(v) for v in value), key=repr))
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, canon(vars(value)))
    return value


def state_of(engagement: Engagement) -> Any:
    state = {k: v for k, v in vars(engagement).items() if k != "_pending_events"}
    return copy.deepcopy(canon(state))


def pairs(*items: tuple[Any, Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return st.sampled_from(items)


def good(strategy: st.SearchStrategy[tuple[Any, Any]]) -> st.SearchStrategy[tuple[Any, Any]]:
    return strategy.filter(lambda p: p[1] is not BAD)


# -- inputs -------------------------------------------------------------------------------------

scopes = pairs(
    ("Build the billing service", "Build the billing service"),
    ("  Audit  ", "Audit"),
    ("s" * 5000, "s" * 5000),
    ("", BAD),
    ("   ", BAD),
    ("s" * 5001, BAD),
    ("bell\x07", BAD),
)
pricing_models = pairs(
    ("fixed-price", "fixed-price"),
    ("time-and-materials", "time-and-materials"),
    ("retainer", "retainer"),
    ("Fixed-Price", BAD),
    ("hourly", BAD),
    ("", BAD),
)
currencies = pairs(
    ("USD", "USD"),
    (" eur ", "EUR"),
    ("jpy", "JPY"),
    ("BHD", "BHD"),
    ("XYZ", BAD),
    ("US", BAD),
    ("", BAD),
)
projects = pairs(
    (None, None), ("", None), (" P-1 ", "P-1"), ("p" * 100, "p" * 100), ("p" * 101, BAD)
)
amounts = st.one_of(
    st.sampled_from(
        [
            "0",
            "0.125",
            "0.135",
            "2.5",
            "3.5",
            "1.2345",
            "1.2355",
            "50000",
            "999999999999999.99",
            "999999999999999.995",
            "1E+15",
            "-0",
            "-0.001",
            "-0.01",
            "-1",
            "-2.5",
            "NaN",
            "sNaN",
            "Infinity",
            "-Infinity",
        ]
    ).map(Decimal),
    st.decimals(min_value=0, max_value=10**6, places=4),
    st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False),
)
start_dates = st.sampled_from([date(2024, 1, 1), date(2024, 2, 29), date(2025, 12, 31)])
end_offsets = st.sampled_from([-365, -1, 0, 1, 30, 365])
milestone_names = pairs(
    ("Design", "Design"),
    (" Build ", "Build"),
    ("m" * 200, "m" * 200),
    ("", BAD),
    ("  ", BAD),
    ("m" * 201, BAD),
)
milestone_amounts = st.one_of(
    st.none(),
    st.sampled_from(
        ["0", "-0", "0.125", "2.5", "3.5", "1.2345", "100", "-1", "-0.001", "NaN", "Infinity"]
    ).map(Decimal),
    st.decimals(min_value=0, max_value=10**5, places=3),
)
reasons = pairs(
    (None, None),
    ("", None),
    (" customer left ", "customer left"),
    ("r" * 500, "r" * 500),
    ("r" * 501, BAD),
)


@dataclass
class TermsDraft:
    raw: Terms
    expected: Terms | None  # None when some field is bad
    bad: list[str]


@st.composite
def terms_drafts(draw: st.DrawFn, valid: bool | None = None) -> TermsDraft:
    """Terms to send; all of them valid when `valid`, by chance when it is None."""
    if valid is None:
        valid = draw(st.booleans())

    def pool(strategy: st.SearchStrategy[tuple[Any, Any]]) -> tuple[Any, Any]:
        return draw(good(strategy) if valid else strategy)

    scope, model, currency, project = (
        pool(scopes),
        pool(pricing_models),
        pool(currencies),
        pool(projects),
    )
    start = draw(start_dates)
    end = start + timedelta(
        days=draw(end_offsets.filter(lambda d: d >= 0) if valid else end_offsets)
    )
    raw_amount = draw(amounts)
    expected_amount = BAD if currency[1] is BAD else half_even(raw_amount, currency[1])
    if valid and expected_amount is BAD:
        raw_amount, expected_amount = Decimal("1250"), half_even(Decimal("1250"), currency[1])
    customer = draw(st.sampled_from(CUSTOMERS))
    bad = [
        name
        for name, (_, expected) in {
            SCOPE: scope,
            MODEL: model,
            CURRENCY: currency,
            PROJECT: project,
            AMOUNT: (raw_amount, expected_amount),
        }.items()
        if expected is BAD
    ]
    if end < start:
        bad.append(END_DATE)
    raw = Terms(customer, project[0], scope[0], model[0], raw_amount, currency[0], start, end)
    expected_terms = None
    if not bad:
        expected_terms = Terms(
            customer, project[1], scope[1], model[1], expected_amount, currency[1], start, end
        )
    return TermsDraft(raw, expected_terms, bad)


# -- the model ----------------------------------------------------------------------------------


@dataclass
class MilestoneModel:
    name: str
    due_date: date
    amount: Decimal | None
    status: str = OPEN
    tasks: set[UUID] = field(default_factory=set)
    done: set[UUID] = field(default_factory=set)
    # (trigger, amount, currency, customer) of the completion, when it completed
    completion: tuple[str, Decimal | None, str, UUID] | None = None


@dataclass
class EngagementModel:
    status: str
    terms: Terms
    squad_id: UUID | None
    milestones: dict[UUID, MilestoneModel] = field(default_factory=dict)
    version: int = 1


class EngagementMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engagement: Engagement | None = None
        self.model: EngagementModel | None = None
        self.saved_events: list[Any] = []
        self.log: EventLog | None = None
        self.clock = START
        self.ids = 0
        self.ticks = 0  # commands tried so far
        self.patience = 0  # commands to try before completing or cancelling the engagement

    # -- helpers ---------------------------------------------------------------------------

    def now(self) -> datetime:
        self.clock += timedelta(minutes=2, microseconds=11)
        self.ticks += 1
        return self.clock

    def new_id(self) -> UUID:
        """Ids drawn from a counter: runs must not depend on chance outside Hypothesis."""
        self.ids += 1
        return UUID(int=(0xE << 124) + self.ids)

    def patient(self) -> bool:
        """Whether to end the lifecycle now; early ends leave little else to try."""
        return self.model is not None and self.ticks >= self.patience

    def all_events(self) -> list[Any]:
        assert self.engagement is not None
        return self.saved_events + list(self.engagement.pending_events)

    def attempt(
        self,
        command: Callable[[], Any],
        *,
        illegal: list[Illegal] | None = None,
        bad_fields: list[str] | None = None,
        expect: list[type[Any]] | None = None,
    ) -> Any:
        """Run `command`. When the model says it is illegal or bad, it must raise accordingly
        and change nothing; otherwise it must record exactly the `expect`ed event types."""
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        before = state_of(engagement)
        pending_before = list(engagement.pending_events)
        if illegal or bad_fields:
            allowed: tuple[type[Exception], ...] = ()
            if illegal:
                allowed += (IllegalTransition,)
            if bad_fields:
                allowed += (InvalidValue,)
            with pytest.raises(allowed) as caught:
                command()
            error = caught.value
            if isinstance(error, IllegalTransition):
                assert illegal, f"unexpected {error}"
                assert (error.aggregate, error.action, error.state) in illegal, error
            else:
                assert isinstance(error, InvalidValue)
                assert bad_fields, f"unexpected {error}"
                assert error.field in bad_fields, (error.field, bad_fields)
            # A refused command changes nothing and records nothing.
            assert state_of(engagement) == before
            assert engagement.pending_events == pending_before
            return None
        result = command()
        assert engagement.pending_events[: len(pending_before)] == pending_before
        new_events = engagement.pending_events[len(pending_before) :]
        assert [type(e) for e in new_events] == (expect or [])
        for e in new_events:
            assert e.tenant_id == TENANT
        model.version += len(new_events)
        if not new_events:
            assert state_of(engagement) == before
        return result

    def pick_milestone(self, data: st.DataObject, known: bool) -> UUID:
        assert self.model is not None
        if known and self.model.milestones:
            return data.draw(st.sampled_from(sorted(self.model.milestones)))
        return self.new_id()

    # -- rules -----------------------------------------------------------------------------

    @initialize(
        draft=terms_drafts(valid=True),
        squad=st.sampled_from([None, *SQUADS]),
        patience=st.integers(min_value=0, max_value=25),
    )
    def draft(self, draft: TermsDraft, squad: UUID | None, patience: int) -> None:
        self.patience = patience
        engagement_id = self.new_id()
        assert draft.expected is not None
        self.engagement = Engagement.draft(
            engagement_id=engagement_id,
            tenant_id=TENANT,
            terms=draft.raw,
            squad_id=squad,
            at=self.now(),
        )
        self.model = EngagementModel(status=DRAFT, terms=draft.expected, squad_id=squad)
        assert self.engagement.id == engagement_id
        assert len(self.engagement.pending_events) == 1
        self.log = memory_log()

    @rule(draft=terms_drafts(), resend=st.booleans())
    def change_terms(self, draft: TermsDraft, resend: bool) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        if resend:  # a PUT of what is there, padded and in lower case
            current = model.terms
            raw = dataclasses.replace(
                current, scope=f" {current.scope} ", currency=current.currency.lower()
            )
            draft = TermsDraft(raw, current, [])
        self.send_terms(draft)

    @precondition(lambda self: self.model is not None and self.model.milestones)
    @rule(shift=st.tuples(st.sampled_from([-1, 0, 1]), st.sampled_from([-1, 0, 1])))
    def move_the_timeline(self, shift: tuple[int, int]) -> None:
        """Move the start and the end by a day or not: milestones are often due on them."""
        assert self.model is not None
        current = self.model.terms
        start = current.start_date + timedelta(days=shift[0])
        end = current.end_date + timedelta(days=shift[1])
        moved = dataclasses.replace(current, start_date=start, end_date=end)
        bad = [END_DATE] if end < start else []
        self.send_terms(TermsDraft(moved, None if bad else moved, bad))

    def send_terms(self, draft: TermsDraft) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        illegal = [("engagement", "update", model.status)] if model.status != DRAFT else []
        new = draft.expected
        changed = new is not None and canon(new) != canon(model.terms)
        bad = list(draft.bad)
        if new is not None and changed:
            milestones = model.milestones.values()
            # Milestone amounts are in the engagement's currency: it cannot change under them.
            if new.currency != model.terms.currency and any(
                m.amount is not None for m in milestones
            ):
                bad.append(CURRENCY)
            # Milestones stay inside the timeline.
            if any(not new.start_date <= m.due_date <= new.end_date for m in milestones):
                bad.append("contractTerms.timeline")
            event(f"change_terms: refused by the milestones ({bad})" if bad else "change_terms")
        self.attempt(
            lambda: engagement.change_terms(terms=draft.raw, at=self.now()),
            illegal=illegal,
            bad_fields=bad,
            expect=[Engagement.TermsChanged] if changed else [],
        )
        if not illegal and not bad and new is not None:
            model.terms = new
            event("change_terms: accepted" if changed else "change_terms: unchanged")

    @rule(squad=st.sampled_from(SQUADS))
    def assign_squad(self, squad: UUID) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        illegal = (
            [("engagement", "assign a squad to", model.status)]
            if model.status in (COMPLETED, CANCELLED)
            else []
        )
        first = model.squad_id is None
        self.attempt(
            lambda: engagement.assign_squad(squad_id=squad, at=self.now()),
            illegal=illegal,
            expect=[Engagement.SquadAssigned] if first else [],
        )
        if not illegal and first:
            model.squad_id = squad

    @precondition(lambda self: self.model is not None and self.ticks >= self.patience // 2)
    @rule()
    def activate(self) -> None:
        """Every other time in Draft a squad is assigned just before: more runs get past Draft,
        where milestones can be completed by hand."""
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        if model.status == DRAFT and self.ticks % 2:
            self.assign_squad(SQUADS[0])
        illegal: list[Illegal] = []
        if model.status != DRAFT:
            illegal = [("engagement", "activate", model.status)]
        elif model.squad_id is None:
            illegal = [("engagement", "activate", "Draft without a squad")]
        self.attempt(
            lambda: engagement.activate(at=self.now()),
            illegal=illegal,
            expect=[Engagement.Activated],
        )
        if not illegal:
            model.status = ACTIVE
            event("activated")

    @precondition(lambda self: self.patient())
    @rule()
    def complete(self) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        illegal = [("engagement", "complete", model.status)] if model.status != ACTIVE else []
        self.attempt(
            lambda: engagement.complete(at=self.now()),
            illegal=illegal,
            expect=[Engagement.Completed],
        )
        if not illegal:
            model.status = COMPLETED

    @precondition(lambda self: self.patient())
    @rule(reason=reasons)
    def cancel(self, reason: tuple[Any, Any]) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        illegal = (
            [("engagement", "cancel", model.status)] if model.status not in (DRAFT, ACTIVE) else []
        )
        bad = ["reason"] if reason[1] is BAD else []
        self.attempt(
            lambda: engagement.cancel(reason=reason[0], at=self.now()),
            illegal=illegal,
            bad_fields=bad,
            expect=[Engagement.Cancelled],
        )
        if not illegal and not bad:
            model.status = CANCELLED
            cancelled = engagement.pending_events[-1]
            assert cancelled.reason == reason[1]

    @rule(
        spec=st.tuples(
            good(milestone_names),
            st.sampled_from(["start", "middle", "end"]),
            st.one_of(st.none(), st.decimals(min_value=0, max_value=10**5, places=3)),
        )
    )
    def add_a_good_milestone(self, spec: tuple[tuple[str, Any], str, Decimal | None]) -> None:
        """Mostly accepted; one argument, so Hypothesis picks it about as often as the others."""
        name, due, amount = spec
        self.add(name, due, amount, self.new_id())

    @rule(
        name=milestone_names,
        due=st.sampled_from(["before", "start", "middle", "end", "after"]),
        amount=milestone_amounts,
    )
    def add_milestone(self, name: tuple[str, Any], due: str, amount: Decimal | None) -> None:
        self.add(name, due, amount, self.new_id())

    @precondition(lambda self: self.model is not None and self.model.milestones)
    @rule(data=st.data(), name=good(milestone_names), due=st.sampled_from(["start", "end"]))
    def add_a_milestone_again(self, data: st.DataObject, name: tuple[str, Any], due: str) -> None:
        """Its id is taken: refused, whatever the milestone's state."""
        assert self.model is not None
        self.add(name, due, None, data.draw(st.sampled_from(sorted(self.model.milestones))))

    def add(
        self, name: tuple[str, Any], due: str, amount: Decimal | None, milestone_id: UUID
    ) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        first, last = model.terms.start_date, model.terms.end_date
        due_date = {
            "before": first - timedelta(days=1),
            "start": first,
            "middle": first + (last - first) / 2,
            "end": last,
            "after": last + timedelta(days=1),
        }[due]
        expected_amount = None if amount is None else half_even(amount, model.terms.currency)
        illegal = (
            [("engagement", "add a milestone to", model.status)]
            if model.status not in (DRAFT, ACTIVE)
            else []
        )
        bad = [
            api_name
            for api_name, broken in {
                "milestoneId": milestone_id in model.milestones,
                "dueDate": due in ("before", "after"),
                "name": name[1] is BAD,
                "amount": expected_amount is BAD,
            }.items()
            if broken
        ]
        self.attempt(
            lambda: engagement.add_milestone(
                milestone_id=milestone_id,
                name=name[0],
                due_date=due_date,
                amount=amount,
                at=self.now(),
            ),
            illegal=illegal,
            bad_fields=bad,
            expect=[Engagement.MilestoneAdded],
        )
        if illegal or bad:
            return
        added = engagement.pending_events[-1]
        assert added.currency == model.terms.currency
        model.milestones[milestone_id] = MilestoneModel(
            name=name[1], due_date=due_date, amount=expected_amount
        )
        event("milestone added")

    @rule(data=st.data(), known=st.booleans())
    def complete_milestone(self, data: st.DataObject, known: bool) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        self.complete_by_hand(self.pick_milestone(data, known))

    def complete_by_hand(self, milestone_id: UUID) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        milestone = model.milestones.get(milestone_id)
        illegal: list[Illegal] = []
        if model.status != ACTIVE:
            illegal.append(("engagement", "complete a milestone of", model.status))
        elif milestone is not None and milestone.status != OPEN:
            illegal.append(("milestone", "complete", milestone.status))
        self.attempt(
            lambda: engagement.complete_milestone(milestone_id=milestone_id, at=self.now()),
            illegal=illegal,
            bad_fields=["milestoneId"] if milestone is None else [],
            expect=[Engagement.MilestoneCompleted],
        )
        if illegal or milestone is None:
            return
        self.completed(milestone, "manual")
        event("milestone completed by hand")

    @rule(data=st.data(), known=st.booleans(), task=st.sampled_from(["new", "linked", "other"]))
    def link_task(self, data: st.DataObject, known: bool, task: str) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        milestone_id = self.pick_milestone(data, known)
        milestone = model.milestones.get(milestone_id)
        all_tasks = sorted({t for m in model.milestones.values() for t in m.tasks})
        if task == "linked" and milestone is not None and milestone.tasks:
            task_id = data.draw(st.sampled_from(sorted(milestone.tasks)))
        elif task == "other" and all_tasks:
            task_id = data.draw(st.sampled_from(all_tasks))
        else:
            task_id = self.new_id()
        self.link(milestone_id, task_id)

    def link(self, milestone_id: UUID, task_id: UUID) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        milestone = model.milestones.get(milestone_id)
        illegal: list[Illegal] = []
        if milestone is not None and milestone.status != OPEN:
            illegal.append(("milestone", "add a task to", milestone.status))
        if milestone is not None and task_id in milestone.tasks and not illegal:
            # Linking a task twice changes nothing (whether or not it records an event).
            before = state_of(engagement)
            pending = len(engagement.pending_events)
            engagement.link_task(milestone_id=milestone_id, task_id=task_id, at=self.now())
            new_events = engagement.pending_events[pending:]
            assert [type(e) for e in new_events] in ([], [Engagement.MilestoneTaskLinked])
            model.version += len(new_events)
            after = state_of(engagement)
            after.update({k: before[k] for k in ("_version", "_modified_on")})
            assert after == before
            return
        self.attempt(
            lambda: engagement.link_task(milestone_id=milestone_id, task_id=task_id, at=self.now()),
            illegal=illegal,
            bad_fields=["milestoneId"] if milestone is None else [],
            expect=[Engagement.MilestoneTaskLinked],
        )
        if milestone is not None and not illegal:
            milestone.tasks.add(task_id)
            event("task linked")

    @rule(
        data=st.data(),
        choice=st.sampled_from(["open", "open", "open", "done", "unlinked", "unknown milestone"]),
    )
    def task_completed(self, data: st.DataObject, choice: str) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        open_tasks = self.open_tasks()
        done_tasks = sorted((mid, t) for mid, m in model.milestones.items() for t in m.done)
        if choice == "open" and open_tasks:
            milestone_id, task_id = data.draw(st.sampled_from(open_tasks))
        elif choice == "done" and done_tasks:
            milestone_id, task_id = data.draw(st.sampled_from(done_tasks))
        elif choice == "unlinked" and model.milestones:
            milestone_id, task_id = self.pick_milestone(data, True), self.new_id()
        else:
            milestone_id, task_id = self.new_id(), self.new_id()
        self.complete_task(milestone_id, task_id)

    def complete_task(self, milestone_id: UUID, task_id: UUID) -> None:
        engagement, model = self.engagement, self.model
        assert engagement is not None
        assert model is not None
        milestone = model.milestones.get(milestone_id)
        if milestone is None:
            self.attempt(
                lambda: engagement.task_completed(
                    milestone_id=milestone_id, task_id=task_id, at=self.now()
                ),
                bad_fields=["milestoneId"],
            )
            return
        counts = task_id in milestone.tasks and task_id not in milestone.done
        completes = (
            counts
            and milestone.status == OPEN
            and milestone.done | {task_id} == milestone.tasks
            and model.status != CANCELLED
        )
        expect: list[type[Any]] = []
        if counts:
            expect.append(Engagement.MilestoneTaskCompleted)
        if completes:
            expect.append(Engagement.MilestoneCompleted)
        result = self.attempt(
            lambda: engagement.task_completed(
                milestone_id=milestone_id, task_id=task_id, at=self.now()
            ),
            expect=expect,
        )
        assert result is completes
        if counts:
            milestone.done.add(task_id)
            event("task completed" + ("" if milestone.status == OPEN else " (milestone done)"))
        if completes:
            self.completed(milestone, "tasks")
            event(f"milestone completed by its last task ({model.status})")
        elif counts and milestone.done == milestone.tasks and milestone.status == OPEN:
            event("last task completed in a cancelled engagement")

    def open_milestones(self) -> list[UUID]:
        assert self.model is not None
        return sorted(k for k, m in self.model.milestones.items() if m.status == OPEN)

    def open_tasks(self) -> list[tuple[UUID, UUID]]:
        assert self.model is not None
        return sorted((k, t) for k, m in self.model.milestones.items() for t in m.tasks - m.done)

    @precondition(lambda self: self.model is not None and self.open_milestones())
    @rule(data=st.data())
    def link_a_new_task_to_an_open_milestone(self, data: st.DataObject) -> None:
        self.link(data.draw(st.sampled_from(self.open_milestones())), self.new_id())

    @precondition(lambda self: self.model is not None and self.open_tasks())
    @rule(data=st.data())
    def complete_an_open_task(self, data: st.DataObject) -> None:
        self.task_completed(data, "open")

    @precondition(
        lambda self: self.model is not None and (self.open_milestones() or self.open_tasks())
    )
    @rule()
    def advance_the_work(self) -> None:
        """Without arguments Hypothesis picks this rule often: it completes the newest open
        task, gives the newest open milestone a task, or (now and then, when Active) completes
        that milestone by hand while its tasks are still open."""
        assert self.model is not None
        phase = self.ticks % 6
        open_milestones, open_tasks = self.open_milestones(), self.open_tasks()
        if open_milestones and self.model.status == ACTIVE and phase == 0:
            self.complete_by_hand(max(open_milestones))
        elif open_tasks and (phase in (1, 2, 3) or not open_milestones):
            self.complete_task(*max(open_tasks))
        else:
            self.link(max(open_milestones), self.new_id())

    def busy_milestones(self) -> list[UUID]:
        """Open milestones with tasks still to do."""
        assert self.model is not None
        return sorted(
            k for k, m in self.model.milestones.items() if m.status == OPEN and m.tasks - m.done
        )

    @precondition(
        lambda self: (
            self.model is not None and self.model.status == ACTIVE and self.busy_milestones()
        )
    )
    @rule()
    def complete_a_busy_milestone_by_hand(self) -> None:
        """Its open tasks may complete later: that must not complete it a second time."""
        self.complete_by_hand(max(self.busy_milestones()))

    def completed(self, milestone: MilestoneModel, trigger: str) -> None:
        assert self.model is not None
        milestone.status = COMPLETED
        milestone.completion = (
            trigger,
            milestone.amount,
            self.model.terms.currency,
            self.model.terms.customer_id,
        )

    @rule(continue_with_loaded=st.booleans())
    def save_and_reload(self, continue_with_loaded: bool) -> None:
        assert self.engagement is not None
        assert self.log is not None
        assert self.model is not None
        pending = list(self.engagement.pending_events)
        self.log.record(self.engagement, meta=META)
        assert self.engagement.pending_events == []
        self.saved_events.extend(pending)
        loaded = self.log.load(Engagement, self.engagement.id)
        assert loaded is not None
        assert state_of(loaded) == state_of(self.engagement)
        history = self.log.history(self.engagement.id)
        assert [e.originator_version for e in history] == list(range(1, self.model.version + 1))
        stored = Counter(
            e.milestone_id for e in history if isinstance(e, Engagement.MilestoneCompleted)
        )
        assert all(n == 1 for n in stored.values())
        if continue_with_loaded:
            self.engagement = loaded

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if self.engagement is None:
            return
        engagement, model = self.engagement, self.model
        assert model is not None
        assert engagement.status == model.status
        assert canon(engagement.terms) == canon(model.terms)
        assert engagement.squad_id == model.squad_id
        assert engagement.tenant_id == TENANT
        assert engagement.version == model.version
        assert set(engagement.milestones) == set(model.milestones)
        for milestone_id, expected in model.milestones.items():
            actual = engagement.milestones[milestone_id]
            assert actual.milestone_id == milestone_id
            assert actual.name == expected.name
            assert actual.due_date == expected.due_date
            assert canon(actual.amount) == canon(expected.amount)
            assert actual.status == expected.status
            assert actual.task_ids == expected.tasks
            assert actual.done_task_ids == expected.done

    @invariant()
    def amounts_have_the_currency_minor_unit(self) -> None:
        if self.engagement is None:
            return
        terms = self.engagement.terms
        assert places(terms.amount) == MINOR_UNITS[terms.currency]
        assert not terms.amount.is_signed()
        assert self.model is not None
        for milestone in self.engagement.milestones.values():
            if milestone.amount is not None:
                assert places(milestone.amount) == MINOR_UNITS[terms.currency]
                assert not milestone.amount.is_signed()
        for e in self.all_events():
            if isinstance(e, Engagement.MilestoneCompleted) and e.amount is not None:
                assert places(e.amount) == MINOR_UNITS[e.currency], (e.amount, e.currency)

    @invariant()
    def milestones_are_due_inside_the_timeline(self) -> None:
        if self.engagement is None:
            return
        terms = self.engagement.terms
        assert terms.start_date <= terms.end_date
        for milestone in self.engagement.milestones.values():
            assert terms.start_date <= milestone.due_date <= terms.end_date

    @invariant()
    def each_milestone_completes_exactly_once_when_it_should(self) -> None:
        if self.engagement is None:
            return
        assert self.model is not None
        completions: dict[UUID, list[Any]] = {}
        for e in self.all_events():
            if isinstance(e, Engagement.MilestoneCompleted):
                completions.setdefault(e.milestone_id, []).append(e)
        assert set(completions) <= set(self.model.milestones)
        for milestone_id, milestone in self.model.milestones.items():
            recorded = completions.get(milestone_id, [])
            assert len(recorded) <= 1, f"{milestone_id} completed {len(recorded)} times"
            assert (len(recorded) == 1) == (milestone.status == COMPLETED)
            if recorded:
                done = recorded[0]
                assert milestone.completion is not None
                trigger, amount, currency, customer = milestone.completion
                assert done.trigger == trigger
                assert canon(done.amount) == canon(amount)
                assert done.currency == currency
                assert done.customer_id == customer
                assert done.name == milestone.name
                assert done.tenant_id == TENANT

    @invariant()
    def replay_gives_the_live_state(self) -> None:
        if self.engagement is None:
            return
        events = self.all_events()
        assert [e.originator_version for e in events] == list(range(1, self.engagement.version + 1))
        rebuilt = replay(events)
        assert isinstance(rebuilt, Engagement)
        assert state_of(rebuilt) == state_of(self.engagement)


EngagementMachine.TestCase.settings = MACHINE_SETTINGS
TestEngagementLifecycle = EngagementMachine.TestCase


# -- examples -----------------------------------------------------------------------------------


def terms(**overrides: Any) -> Terms:
    values: dict[str, Any] = {
        "customer_id": CUSTOMERS[0],
        "project_id": None,
        "scope": "Build the billing service",
        "pricing_model": "fixed-price",
        "amount": Decimal("50000"),
        "currency": "USD",
        "start_date": date(2024, 1, 1),
        "end_date": date(2024, 12, 31),
    }
    values.update(overrides)
    return Terms(**values)


def drafted(squad: UUID | None = SQUADS[0], **overrides: Any) -> Engagement:
    return Engagement.draft(
        engagement_id=uuid4(), tenant_id=TENANT, terms=terms(**overrides), squad_id=squad, at=START
    )


def completions(events: list[Any], milestone_id: UUID) -> int:
    return sum(
        isinstance(e, Engagement.MilestoneCompleted) and e.milestone_id == milestone_id
        for e in events
    )


@pytest.mark.parametrize(
    ("overrides", "api_field"),
    [
        ({"end_date": date(2023, 12, 31)}, END_DATE),
        ({"amount": Decimal("-0.01")}, AMOUNT),
        ({"amount": Decimal("NaN")}, AMOUNT),
        ({"amount": Decimal("Infinity")}, AMOUNT),
        ({"amount": Decimal("1E+15")}, AMOUNT),
        ({"pricing_model": "per-seat"}, MODEL),
        ({"currency": "XYZ"}, CURRENCY),
        ({"scope": "  "}, SCOPE),
        ({"project_id": "p" * 101}, PROJECT),
    ],
)
def test_draft_refuses_bad_terms_naming_the_field(
    overrides: dict[str, Any], api_field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        drafted(**overrides)
    assert caught.value.field == api_field


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [
        ("USD", "0.125", "0.12"),
        ("USD", "0.135", "0.14"),
        ("jpy", "2.5", "2"),
        ("JPY", "3.5", "4"),
        ("BHD", "1.2345", "1.234"),
    ],
)
def test_amounts_round_half_even_to_the_minor_unit(
    currency: str, amount: str, expected: str
) -> None:
    engagement = drafted(currency=currency, amount=Decimal(amount))
    assert str(engagement.terms.amount) == expected
    engagement.add_milestone(
        milestone_id=uuid4(),
        name="M",
        due_date=date(2024, 6, 1),
        amount=Decimal(amount),
        at=START,
    )
    assert [str(m.amount) for m in engagement.milestones.values()] == [expected]


def test_an_engagement_holds_at_most_500_milestones() -> None:
    engagement = drafted()
    for _ in range(500):
        engagement.add_milestone(
            milestone_id=uuid4(), name="M", due_date=date(2024, 6, 1), amount=None, at=START
        )
    with pytest.raises(InvalidValue) as caught:
        engagement.add_milestone(
            milestone_id=uuid4(), name="M", due_date=date(2024, 6, 1), amount=None, at=START
        )
    assert caught.value.field == "milestones"
    assert len(engagement.milestones) == 500


def ready_with_one_task(log: EventLog) -> tuple[UUID, UUID, UUID]:
    engagement = drafted()
    engagement.activate(at=START)
    milestone_id, task_id = uuid4(), uuid4()
    engagement.add_milestone(
        milestone_id=milestone_id,
        name="Go live",
        due_date=date(2024, 6, 1),
        amount=Decimal("1000"),
        at=START,
    )
    engagement.link_task(milestone_id=milestone_id, task_id=task_id, at=START)
    log.record(engagement, meta=META)
    return engagement.id, milestone_id, task_id


@pytest.mark.parametrize(
    ("first", "second"),
    [("tasks", "tasks"), ("tasks", "manual"), ("manual", "tasks"), ("manual", "manual")],
)
def test_two_concurrent_completions_of_a_milestone_record_it_once(first: str, second: str) -> None:
    log = memory_log()
    engagement_id, milestone_id, task_id = ready_with_one_task(log)
    one, two = log.load(Engagement, engagement_id), log.load(Engagement, engagement_id)
    assert one is not None
    assert two is not None
    for copy_, how in ((one, first), (two, second)):
        if how == "tasks":
            assert copy_.task_completed(milestone_id=milestone_id, task_id=task_id, at=START)
        else:
            copy_.complete_milestone(milestone_id=milestone_id, at=START)
        assert completions(copy_.pending_events, milestone_id) == 1
    position = log.record(one, meta=META)
    with pytest.raises(ConcurrentWrite):
        log.record(two, meta=META)
    assert log.head() == position
    assert completions(log.history(engagement_id), milestone_id) == 1

    # Retried against what is stored now, the completion records nothing new.
    again = log.load(Engagement, engagement_id)
    assert again is not None
    assert again.milestones[milestone_id].status == COMPLETED
    if second == "tasks":
        assert again.task_completed(milestone_id=milestone_id, task_id=task_id, at=START) is False
    else:
        with pytest.raises(IllegalTransition) as caught:
            again.complete_milestone(milestone_id=milestone_id, at=START)
        assert (caught.value.aggregate, caught.value.state) == ("milestone", COMPLETED)
    assert completions(again.pending_events, milestone_id) == 0
    # (After a completion by hand the task still counts as done, so that alone is recorded.)
    expected = [Engagement.MilestoneTaskCompleted] if (first, second) == ("manual", "tasks") else []
    assert [type(e) for e in again.pending_events] == expected
    log.record(again, meta=META)
    assert completions(log.history(engagement_id), milestone_id) == 1


def test_a_milestone_of_a_cancelled_engagement_does_not_complete_by_its_tasks() -> None:
    log = memory_log()
    engagement_id, milestone_id, task_id = ready_with_one_task(log)
    engagement = log.load(Engagement, engagement_id)
    assert engagement is not None
    engagement.cancel(reason=None, at=START)
    assert engagement.task_completed(milestone_id=milestone_id, task_id=task_id, at=START) is False
    assert [type(e) for e in engagement.pending_events] == [
        Engagement.Cancelled,
        Engagement.MilestoneTaskCompleted,
    ]
    assert engagement.milestones[milestone_id].status == OPEN


# -- refusals that keep the invariants -----------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "amount"), [("JPY", "-0.01"), ("USD", "-0.001"), ("BHD", "-0.0001")]
)
def test_a_negative_contract_amount_is_refused_even_when_it_rounds_to_zero(
    currency: str, amount: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        drafted(currency=currency, amount=Decimal(amount))
    assert caught.value.field == AMOUNT


def test_negative_zero_is_a_plain_zero() -> None:
    engagement = drafted(currency="USD", amount=Decimal("-0"))
    assert str(engagement.terms.amount) == "0.00"


def add_and_change_currency(amount: Decimal | None, currency: str) -> tuple[Engagement, UUID]:
    engagement = drafted(currency="USD")
    milestone_id = uuid4()
    engagement.add_milestone(
        milestone_id=milestone_id,
        name="Design",
        due_date=date(2024, 6, 1),
        amount=amount,
        at=START,
    )
    version = engagement.version
    refused: InvalidValue | None = None
    try:
        engagement.change_terms(terms=terms(currency=currency), at=START)
    except InvalidValue as error:
        refused = error
    if refused is not None:
        assert refused.field == CURRENCY
        assert engagement.version == version
        assert engagement.terms.currency == "USD"
    return engagement, milestone_id


@pytest.mark.parametrize("amount", [Decimal("10.50"), Decimal("0.01"), Decimal("0")])
def test_the_currency_cannot_change_under_milestone_amounts(amount: Decimal) -> None:
    engagement, milestone_id = add_and_change_currency(amount, "JPY")
    assert engagement.terms.currency == "USD"
    assert str(engagement.milestones[milestone_id].amount) == str(half_even(amount, "USD"))


def test_the_currency_can_change_when_no_milestone_has_an_amount() -> None:
    engagement, _ = add_and_change_currency(None, "JPY")
    assert engagement.terms.currency == "JPY"


def test_a_zero_milestone_amount_is_never_left_in_another_minor_unit() -> None:
    """Zero is an amount too: Decimal("0.00") must not slip through as if it were None."""
    engagement, milestone_id = add_and_change_currency(Decimal("0"), "JPY")
    currency = engagement.terms.currency
    assert places(engagement.milestones[milestone_id].amount) == MINOR_UNITS[currency]
    engagement.activate(at=START)
    engagement.complete_milestone(milestone_id=milestone_id, at=START)
    done = engagement.pending_events[-1]
    assert isinstance(done, Engagement.MilestoneCompleted)
    assert done.amount is not None
    assert places(done.amount) == MINOR_UNITS[done.currency], f"{done.amount} {done.currency}"


@pytest.mark.parametrize(
    ("timeline", "inside"),
    [
        ({"end_date": date(2024, 2, 1)}, False),
        ({"start_date": date(2024, 6, 2)}, False),
        ({"start_date": date(2024, 6, 1), "end_date": date(2024, 6, 1)}, True),
        ({"start_date": date(2023, 6, 1), "end_date": date(2025, 6, 1)}, True),
    ],
)
def test_a_timeline_change_keeps_every_milestone_inside_it(
    timeline: dict[str, date], inside: bool
) -> None:
    engagement = drafted()
    engagement.add_milestone(
        milestone_id=uuid4(), name="Go live", due_date=date(2024, 6, 1), amount=None, at=START
    )
    if inside:
        engagement.change_terms(terms=terms(**timeline), at=START)
    else:
        with pytest.raises(InvalidValue) as caught:
            engagement.change_terms(terms=terms(**timeline), at=START)
        assert caught.value.field.startswith("contractTerms.timeline")
    for milestone in engagement.milestones.values():
        assert engagement.terms.start_date <= milestone.due_date <= engagement.terms.end_date


def test_re_adding_a_milestone_id_cannot_complete_it_twice() -> None:
    engagement = drafted()
    engagement.activate(at=START)
    milestone_id = uuid4()
    engagement.add_milestone(
        milestone_id=milestone_id,
        name="Go live",
        due_date=date(2024, 6, 1),
        amount=Decimal("1000"),
        at=START,
    )
    engagement.complete_milestone(milestone_id=milestone_id, at=START)
    with pytest.raises(InvalidValue) as caught:
        engagement.add_milestone(
            milestone_id=milestone_id,
            name="Go live",
            due_date=date(2024, 6, 1),
            amount=Decimal("1000"),
            at=START,
        )
    assert caught.value.field == "milestoneId"
    assert engagement.milestones[milestone_id].status == COMPLETED
    with pytest.raises(IllegalTransition):
        engagement.complete_milestone(milestone_id=milestone_id, at=START)
    assert completions(engagement.pending_events, milestone_id) == 1
