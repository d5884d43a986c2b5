// Who is signed in (GET /v1/me), for every screen: the role decides which buttons exist.
import { createContext } from "preact";
import { useContext } from "preact/hooks";

import type { Me } from "./api";

export const MeContext = createContext<Me | null>(null);
export const useMe = (): Me => useContext(MeContext) as Me;
export const canReview = (me: Me): boolean => me.role === "admin" || me.role === "reviewer";
export const isAdmin = (me: Me): boolean => me.role === "admin";
